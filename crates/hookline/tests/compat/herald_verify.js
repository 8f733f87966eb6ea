// Seed 004's Express handler logic, with the same crypto-js modules, run on a real delivery.
//
// Usage: node herald_verify.js SECRET SIGNATURE < BODY
//
// request.body is what body-parser's json() makes of the raw body: JSON.parse of its UTF-8 text.
const sha256 = require('crypto-js/sha256')
const Base64 = require('crypto-js/enc-base64')

const [secretKey, signature] = process.argv.slice(2)
const request = {
  headers: { 'x-herald-signature': signature },
  body: JSON.parse(require('fs').readFileSync(0).toString('utf8')),
}

// From here on, the seed's handler as written.
const concatenatedValue = secretKey + JSON.stringify(request.body)
const hashedValue = Base64.stringify(sha256(concatenatedValue, secretKey))
if (request.headers['x-herald-signature'] === hashedValue) {
  console.log('Request body is valid')
} else {
  console.log(`Request body is NOT valid: computed ${hashedValue}, header ${signature}, over ${JSON.stringify(concatenatedValue)}`)
  process.exit(1)
}
