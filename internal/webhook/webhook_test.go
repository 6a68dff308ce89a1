package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAllowlist(t *testing.T) {
	t.Parallel()
	var none webhook.Allowlist
	for _, a := range []string{"127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
		"fe80::1", "fc00::1", "0.0.0.0", "::", "100.64.0.1", "224.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1"} {
		require.ErrorIs(t, none.Check(netip.MustParseAddr(a)), webhook.ErrRefused, a)
	}
	for _, a := range []string{"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"} {
		require.NoError(t, none.Check(netip.MustParseAddr(a)), a)
	}
	local := webhook.Allowlist{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	require.NoError(t, local.Check(netip.MustParseAddr("127.0.0.1")))
	require.ErrorIs(t, local.Check(netip.MustParseAddr("127.0.0.2")), webhook.ErrRefused)
}

func TestSendSignsAndIsRefusedOutsideTheAllowlist(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	verified := make(chan error, 1)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		body, _ := io.ReadAll(r.Body)
		verified <- client.VerifyWebhook("s3cret", r.Header.Get(spool.WebhookSignatureHeader), body, time.Minute)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)
	ctx := context.Background()
	body := []byte(`{"id":"0190","state":"succeeded"}`)

	// Refused by default: the receiver is on loopback. Nothing reaches it.
	strict := webhook.NewSender(webhook.Config{})
	t.Cleanup(strict.Close)
	err := strict.Send(ctx, recv.URL, "s3cret", body)
	require.ErrorIs(t, err, webhook.ErrRefused)
	require.Zero(t, got.Load())

	// Allowed when configured; the signature verifies.
	s := webhook.NewSender(webhook.Config{Allowlist: webhook.Allowlist{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	t.Cleanup(s.Close)
	require.NoError(t, s.Send(ctx, recv.URL, "s3cret", body))
	require.NoError(t, <-verified)
	require.EqualValues(t, 1, got.Load())

	// A name that resolves to loopback is refused at dial time.
	err = strict.Send(ctx, "http://localhost:1/hook", "s3cret", body)
	require.ErrorIs(t, err, webhook.ErrRefused)
}

func TestSendFailsOnErrorAnswersAndRedirects(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(recv.Close)
	s := webhook.NewSender(webhook.Config{Allowlist: webhook.Allowlist{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	t.Cleanup(s.Close)
	ctx := context.Background()
	require.ErrorContains(t, s.Send(ctx, recv.URL, "k", []byte(`{}`)), "500")
	require.ErrorContains(t, s.Send(ctx, recv.URL, "k", []byte(`{}`)), "302")
	require.NoError(t, s.Send(ctx, recv.URL, "k", []byte(`{}`)))

	for _, bad := range []string{"ftp://example.com/x", "http://", "http://user:pw@example.com/", "::"} {
		require.ErrorIs(t, s.Send(ctx, bad, "k", nil), spool.ErrInvalid, bad)
	}
}
