package spool

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// WebhookSignatureHeader names the header that signs a webhook delivery:
//
//	X-Spool-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
//
// The timestamp is inside the signed text, so a captured delivery cannot
// be replayed later with a new time; receivers also refuse timestamps too
// far from their clock (client.VerifyWebhook). Several v1= entries may be
// sent while a secret is being rotated; one matching is enough.
const WebhookSignatureHeader = "X-Spool-Signature"

// WebhookSignature returns the v1 signature of body sent at unix time t.
func WebhookSignature(secret string, t int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(t, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// WebhookSignatureValue returns the whole X-Spool-Signature header value
// for body sent at unix time t.
func WebhookSignatureValue(secret string, t int64, body []byte) string {
	return "t=" + strconv.FormatInt(t, 10) + ",v1=" + WebhookSignature(secret, t, body)
}
