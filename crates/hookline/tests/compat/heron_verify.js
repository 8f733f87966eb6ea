// Seed 000's Node verification snippet, run on a real delivery.
//
// Usage: node heron_verify.js SECRET SIGNATURE parsed|raw < BODY
//
// "parsed" is the seed's snippet as written: JSON.parse the body, then sign JSON.stringify(data).
// "raw" signs the raw body bytes, which is what Hookline's receivers' guide (docs/receiving.md) recommends.
const crypto = require('crypto')

const [secret, received, mode] = process.argv.slice(2)
const rawBody = require('fs').readFileSync(0)

let message
if (mode === 'parsed') {
  const data = JSON.parse(rawBody.toString('utf8'))
  message = JSON.stringify(data)
} else if (mode === 'raw') {
  message = rawBody
} else {
  console.error(`unknown mode ${mode}; use parsed or raw`)
  process.exit(2)
}

// The seed's snippet.
const signature = crypto
  .createHmac('sha256', secret)
  .update(message)
  .digest('base64')

if (signature === received) {
  console.log('verified')
} else {
  console.log(`mismatch: computed ${signature}, header ${received}, over ${JSON.stringify(String(message))}`)
  process.exit(1)
}
