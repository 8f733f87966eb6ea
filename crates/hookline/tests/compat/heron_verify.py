"""Seed 000's Python verification snippet, run on a real delivery.

Usage: python3 heron_verify.py SECRET SIGNATURE < BODY

The body is parsed and serialised again exactly as the seed's snippet does,
then signed; prints "verified" and exits 0 when the result equals SIGNATURE.
"""

import base64
import hashlib
import hmac
import json
import sys

secret = sys.argv[1]  # shared secret, *not* your API credentials
received = sys.argv[2]  # the Heron-Signature header
data = json.loads(sys.stdin.buffer.read())

# From here on, the seed's snippet as written.
message = json.dumps(data, separators=(",", ":"))
dig = hmac.new(
    secret.encode("utf-8"),
    msg=message.encode("utf-8"),
    digestmod=hashlib.sha256,
).digest()
signature = base64.b64encode(dig).decode()

if signature == received:
    print("verified")
else:
    print(f"mismatch: computed {signature}, header {received}, over {message!r}")
    sys.exit(1)
