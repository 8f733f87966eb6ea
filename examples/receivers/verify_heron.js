// Verifies a Hookline delivery signed with the heron scheme, in Node with the standard library only.
//
// Usage: WEBHOOK_SECRET=sec_… node verify_heron.js HERON_SIGNATURE < BODY
// Prints "verified" and exits 0, or says why not and exits 1.

// [verify]
const crypto = require("node:crypto");

// body: a Buffer with the raw request body, exactly as received (in Express: express.raw({ type: "*/*" })).
function verifyHeron(secret, body, signature) {
  const expected = crypto.createHmac("sha256", secret).update(body).digest();
  const received = Buffer.from(signature, "base64");
  return received.length === expected.length && crypto.timingSafeEqual(expected, received);
}
// [/verify]

const body = require("node:fs").readFileSync(0);
if (verifyHeron(process.env.WEBHOOK_SECRET, body, process.argv[2])) {
  console.log("verified");
} else {
  console.log("not verified: the heron-signature does not match this body and secret");
  process.exit(1);
}
