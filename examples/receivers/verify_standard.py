"""Verifies a Hookline delivery signed with Standard Webhooks, in Python with the standard library only.

Usage: WEBHOOK_SECRET=whsec_… python3 verify_standard.py WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < BODY
Prints "verified" and exits 0, or says why not and exits 1.
"""

# [verify]
import base64
import hashlib
import hmac
import time

TOLERANCE_SECONDS = 5 * 60


def verify_standard(secret: str, headers: dict, body: bytes) -> None:
    """Raises ValueError unless the request is genuine. body: the raw request body, exactly as received."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise ValueError(f"webhook-timestamp {timestamp} is too far from now; a replay, or a clock is off")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in headers["webhook-signature"].split():  # several during a secret rotation
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(expected, signature):  # constant time
            return
    raise ValueError("no webhook-signature matches this body and secret")
# [/verify]


if __name__ == "__main__":
    import os
    import sys

    names = ["webhook-id", "webhook-timestamp", "webhook-signature"]
    headers = dict(zip(names, sys.argv[1:4]))
    try:
        verify_standard(os.environ["WEBHOOK_SECRET"], headers, sys.stdin.buffer.read())
    except ValueError as error:
        print(f"not verified: {error}")
        sys.exit(1)
    print("verified")
