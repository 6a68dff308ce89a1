package client_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_900_000_000, 0)
	body := []byte(`{"id":"0190","state":"succeeded"}`)
	good := spool.WebhookSignatureValue("s3cret", now.Unix(), body)

	require.NoError(t, client.VerifyWebhookAt("s3cret", good, body, 0, now))
	require.NoError(t, client.VerifyWebhookAt("s3cret", good, body, 0, now.Add(4*time.Minute)))
	// Rotation: any matching v1 is enough.
	rotated := good + ",v1=" + spool.WebhookSignature("old", now.Unix(), body)
	require.NoError(t, client.VerifyWebhookAt("old", rotated, body, 0, now))

	for name, tc := range map[string]struct {
		secret, header string
		body           []byte
		at             time.Time
	}{
		"wrong secret":    {"other", good, body, now},
		"changed body":    {"s3cret", good, []byte(`{"id":"0190","state":"dead"}`), now},
		"too old":         {"s3cret", good, body, now.Add(6 * time.Minute)},
		"from the future": {"s3cret", good, body, now.Add(-6 * time.Minute)},
		"no signature":    {"s3cret", "t=1900000000", body, now},
		"no timestamp":    {"s3cret", "v1=abc", body, now},
		"garbage":         {"s3cret", "nonsense", body, now},
		"empty":           {"s3cret", "", body, now},
		"no secret":       {"", good, body, now},
		"time re-signed":  {"s3cret", "t=1900000060" + good[len("t=1900000000"):], body, now},
	} {
		err := client.VerifyWebhookAt(tc.secret, tc.header, tc.body, 0, tc.at)
		require.ErrorIs(t, err, client.ErrWebhookSignature, name)
	}
	// The public form uses the wall clock.
	fresh := spool.WebhookSignatureValue("k", time.Now().Unix(), body)
	require.NoError(t, client.VerifyWebhook("k", fresh, body, time.Minute))
}

// FuzzVerifyWebhook: no header, however malformed, panics or verifies
// without the secret's signature.
func FuzzVerifyWebhook(f *testing.F) {
	body := []byte(`{"id":"1"}`)
	f.Add(spool.WebhookSignatureValue("k", 1_900_000_000, body))
	f.Add("t=1900000000,v1=00")
	f.Add("t=,v1=")
	f.Add(",,,")
	f.Fuzz(func(t *testing.T, header string) {
		now := time.Unix(1_900_000_000, 0)
		err := client.VerifyWebhookAt("k", header, body, 0, now)
		if err == nil && !strings.Contains(header, spool.WebhookSignature("k", 1_900_000_000, body)[:16]) {
			// A header that verifies must carry a real signature for a
			// timestamp in the window; check the exact one it names.
			ok := false
			for d := int64(-300); d <= 300 && !ok; d++ {
				ok = strings.Contains(header, spool.WebhookSignature("k", 1_900_000_000+d, body))
			}
			if !ok {
				t.Fatalf("header %q verified without a signature", header)
			}
		}
	})
}
