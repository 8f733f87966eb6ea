// Verifies a Hookline delivery signed with the Standard Webhooks scheme, in Go with the standard library only.
//
// Usage: WEBHOOK_SECRET=whsec_… go run verify_standard.go WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < BODY
// Prints "verified" and exits 0, or says why not and exits 1.
package main

import (
	"io"
	"os"
)

// [verify]
import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const toleranceSeconds = 5 * 60

// verifyStandard answers nil when the request is genuine. body: the raw request body, exactly as received.
func verifyStandard(secret string, headers map[string]string, body []byte) error {
	id, timestamp := headers["webhook-id"], headers["webhook-timestamp"]
	sent, err := strconv.ParseInt(timestamp, 10, 64)
	if age := time.Now().Unix() - sent; err != nil || age > toleranceSeconds || age < -toleranceSeconds {
		return fmt.Errorf("webhook-timestamp %s is too far from now; a replay, or a clock is off", timestamp)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("the secret is not base64 after whsec_")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	expected := mac.Sum(nil)
	for _, entry := range strings.Fields(headers["webhook-signature"]) { // several during a secret rotation
		version, signature, _ := strings.Cut(entry, ",")
		received, err := base64.StdEncoding.DecodeString(signature)
		if version == "v1" && err == nil && hmac.Equal(expected, received) { // constant time
			return nil
		}
	}
	return errors.New("no webhook-signature matches this body and secret")
}

// [/verify]

func main() {
	body, _ := io.ReadAll(os.Stdin)
	headers := map[string]string{"webhook-id": os.Args[1], "webhook-timestamp": os.Args[2], "webhook-signature": os.Args[3]}
	if err := verifyStandard(os.Getenv("WEBHOOK_SECRET"), headers, body); err != nil {
		fmt.Println("not verified:", err)
		os.Exit(1)
	}
	fmt.Println("verified")
}
