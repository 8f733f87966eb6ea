// Verifies a Hookline delivery signed with the heron scheme, in Go with the standard library only.
//
// Usage: WEBHOOK_SECRET=sec_… go run verify_heron.go HERON_SIGNATURE < BODY
// Prints "verified" and exits 0, or says why not and exits 1.
package main

import (
	"fmt"
	"io"
	"os"
)

// [verify]
import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// verifyHeron: body is the raw request body, exactly as received (not parsed and serialised again).
func verifyHeron(secret string, body []byte, signature string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	received, err := base64.StdEncoding.DecodeString(signature)
	return err == nil && hmac.Equal(mac.Sum(nil), received) // constant time
}

// [/verify]

func main() {
	body, _ := io.ReadAll(os.Stdin)
	if !verifyHeron(os.Getenv("WEBHOOK_SECRET"), body, os.Args[1]) {
		fmt.Println("not verified: the heron-signature does not match this body and secret")
		os.Exit(1)
	}
	fmt.Println("verified")
}
