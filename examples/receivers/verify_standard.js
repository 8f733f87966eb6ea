// Verifies a Hookline delivery signed with Standard Webhooks, in Node with the standard library only.
//
// Usage: WEBHOOK_SECRET=whsec_… node verify_standard.js WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < BODY
// Prints "verified" and exits 0, or says why not and exits 1.

// [verify]
const crypto = require("node:crypto");

const TOLERANCE_SECONDS = 5 * 60;

// Throws unless the request is genuine. body: a Buffer with the raw request body, exactly as received.
function verifyStandard(secret, headers, body) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const sent = Number(timestamp);
  if (!Number.isInteger(sent) || Math.abs(Date.now() / 1000 - sent) > TOLERANCE_SECONDS) {
    throw new Error(`webhook-timestamp ${timestamp} is too far from now; a replay, or a clock is off`);
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
  const expected = crypto.createHmac("sha256", key).update(signed).digest();
  // Several signatures during a secret rotation.
  const matched = headers["webhook-signature"].split(" ").some((entry) => {
    const [version, signature] = entry.split(",");
    const received = Buffer.from(signature ?? "", "base64");
    return version === "v1" && received.length === expected.length && crypto.timingSafeEqual(expected, received);
  });
  if (!matched) {
    throw new Error("no webhook-signature matches this body and secret");
  }
}
// [/verify]

const [id, timestamp, signature] = process.argv.slice(2);
const headers = { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature };
try {
  verifyStandard(process.env.WEBHOOK_SECRET, headers, require("node:fs").readFileSync(0));
} catch (error) {
  console.log(`not verified: ${error.message}`);
  process.exit(1);
}
console.log("verified");
