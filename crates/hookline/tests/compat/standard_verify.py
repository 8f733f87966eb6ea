"""Verifies a real Standard Webhooks delivery with the standard's own Python library.

Usage: python3 standard_verify.py SECRET WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < BODY

Prints the verified payload's topic and exits 0, or prints why verification failed and exits 1.
"""

import sys

try:
    from standardwebhooks.webhooks import Webhook
except ImportError as error:
    print(
        f"{error}; install it with: pip install -r crates/hookline/tests/compat/requirements.txt",
        file=sys.stderr,
    )
    sys.exit(3)

secret, webhook_id, timestamp, signature = sys.argv[1:5]
body = sys.stdin.buffer.read()
headers = {
    "webhook-id": webhook_id,
    "webhook-timestamp": timestamp,
    "webhook-signature": signature,
}

try:
    payload = Webhook(secret).verify(body, headers)
except Exception as error:  # the library raises WebhookVerificationError; show any failure as such
    print(f"not verified: {type(error).__name__}: {error}")
    sys.exit(1)
print(f"verified {payload['topic']}")
