#!/bin/sh
# Checks a heron signature by hand with openssl: for looking at a captured delivery, not for production
# (the comparison below is not constant time).
#
# Usage: WEBHOOK_SECRET=sec_… sh verify_heron.sh HERON_SIGNATURE < BODY
# Prints "verified" and exits 0, or says why not and exits 1.

expected=$(openssl dgst -sha256 -hmac "$WEBHOOK_SECRET" -binary | base64)
if [ "$expected" = "$1" ]; then
  echo verified
else
  echo "not verified: computed $expected, the header says $1"
  exit 1
fi
