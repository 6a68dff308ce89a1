package client

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spoolq/spool"
)

// DefaultWebhookTolerance is how far a webhook's timestamp may be from the
// receiver's clock when VerifyWebhook is given no tolerance.
const DefaultWebhookTolerance = 5 * time.Minute

// ErrWebhookSignature is returned (wrapped) by VerifyWebhook for a
// delivery that must not be trusted.
var ErrWebhookSignature = errors.New("webhook signature does not verify")

// VerifyWebhook checks a webhook delivery: header is the value of its
// X-Spool-Signature header (spool.WebhookSignatureHeader), body the raw
// request body, exactly as received. It fails, with an error wrapping
// ErrWebhookSignature, when the header is malformed, no v1 signature
// matches HMAC-SHA256(secret, t + "." + body), or t is further than
// tolerance from now (0 means DefaultWebhookTolerance), which refuses
// replays of old deliveries.
//
//	body, _ := io.ReadAll(r.Body)
//	if err := client.VerifyWebhook(secret, r.Header.Get(spool.WebhookSignatureHeader), body, 0); err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
func VerifyWebhook(secret, header string, body []byte, tolerance time.Duration) error {
	return verifyWebhook(secret, header, body, tolerance, time.Now())
}

func verifyWebhook(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	if secret == "" {
		return fmt.Errorf("%w: no secret to verify with", ErrWebhookSignature)
	}
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	var (
		ts   int64 = -1
		sigs []string
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed header", ErrWebhookSignature)
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ts != -1 {
				return fmt.Errorf("%w: malformed timestamp", ErrWebhookSignature)
			}
			ts = n
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if ts < 0 || len(sigs) == 0 {
		return fmt.Errorf("%w: the header needs t= and v1=", ErrWebhookSignature)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp is %s away from now, more than %s", ErrWebhookSignature, d.Round(time.Second), tolerance)
	}
	want := []byte(spool.WebhookSignature(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no signature matches", ErrWebhookSignature)
}
