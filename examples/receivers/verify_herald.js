// Verifies a Hookline delivery signed with the herald scheme, in Node with its standard library only.
//
// Usage: WEBHOOK_SECRET=sec_… node verify_herald.js X_HERALD_SIGNATURE < BODY
// Prints "verified" and exits 0, or says why not and exits 1.

// [verify]
const crypto = require("node:crypto");

// body: a Buffer with the raw request body, exactly as received (in Express: express.raw({ type: "*/*" })).
function verifyHerald(secret, body, signature) {
  const expected = crypto.createHash("sha256").update(secret).update(body).digest();
  const received = Buffer.from(signature, "base64");
  return received.length === expected.length && crypto.timingSafeEqual(expected, received);
}
// [/verify]

const body = require("node:fs").readFileSync(0);
if (verifyHerald(process.env.WEBHOOK_SECRET, body, process.argv[2])) {
  console.log("verified");
} else {
  console.log("not verified: the x-herald-signature does not match this body and secret");
  process.exit(1);
}
