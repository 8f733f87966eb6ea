"""Verifies a Hookline delivery signed with the heron scheme, in Python with the standard library only.

Usage: WEBHOOK_SECRET=sec_… python3 verify_heron.py HERON_SIGNATURE < BODY
Prints "verified" and exits 0, or says why not and exits 1.
"""

# [verify]
import base64
import hashlib
import hmac


def verify_heron(secret: str, body: bytes, signature: str) -> bool:
    """body: the raw request body, exactly as received (not parsed and serialised again)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    return hmac.compare_digest(expected, signature)  # constant time
# [/verify]


if __name__ == "__main__":
    import os
    import sys

    secret = os.environ["WEBHOOK_SECRET"]
    body = sys.stdin.buffer.read()
    if verify_heron(secret, body, sys.argv[1]):
        print("verified")
    else:
        print("not verified: the heron-signature does not match this body and secret")
        sys.exit(1)
