"""Verifies a Hookline delivery signed with the herald scheme, in Python with the standard library only.

Usage: WEBHOOK_SECRET=sec_… python3 verify_herald.py X_HERALD_SIGNATURE < BODY
Prints "verified" and exits 0, or says why not and exits 1.
"""

# [verify]
import base64
import hashlib
import hmac


def verify_herald(secret: str, body: bytes, signature: str) -> bool:
    """body: the raw request body, exactly as received."""
    expected = base64.b64encode(hashlib.sha256(secret.encode() + body).digest()).decode()
    return hmac.compare_digest(expected, signature)  # constant time
# [/verify]


if __name__ == "__main__":
    import os
    import sys

    secret = os.environ["WEBHOOK_SECRET"]
    body = sys.stdin.buffer.read()
    if verify_herald(secret, body, sys.argv[1]):
        print("verified")
    else:
        print("not verified: the x-herald-signature does not match this body and secret")
        sys.exit(1)
