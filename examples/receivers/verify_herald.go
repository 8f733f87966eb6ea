// Verifies a Hookline delivery signed with the herald scheme, in Go with the standard library only.
//
// Usage: WEBHOOK_SECRET=sec_… go run verify_herald.go X_HERALD_SIGNATURE < BODY
// Prints "verified" and exits 0, or says why not and exits 1.
package main

import (
	"fmt"
	"io"
	"os"
)

// [verify]
import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// verifyHerald: a SHA-256 hash of the secret followed by the raw body, exactly as received.
func verifyHerald(secret string, body []byte, signature string) bool {
	digest := sha256.Sum256(append([]byte(secret), body...))
	received, err := base64.StdEncoding.DecodeString(signature)
	return err == nil && subtle.ConstantTimeCompare(digest[:], received) == 1 // constant time
}

// [/verify]

func main() {
	body, _ := io.ReadAll(os.Stdin)
	if !verifyHerald(os.Getenv("WEBHOOK_SECRET"), body, os.Args[1]) {
		fmt.Println("not verified: the x-herald-signature does not match this body and secret")
		os.Exit(1)
	}
	fmt.Println("verified")
}
