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

// Callback URLs that could never be delivered are refused when the job is
// enqueued, unless the allowlist names them.
func TestCheckTarget(t *testing.T) {
	t.Parallel()
	var none webhook.Allowlist
	refused := []string{
		"http://127.0.0.1/hook", "http://127.0.0.2:8080/", "http://[::1]/", "http://169.254.169.254/latest/meta-data",
		"http://10.0.0.5/", "http://192.168.1.1/", "http://172.16.3.4/", "http://[fd00::1]/", "http://[fe80::1%25eth0]/",
		"http://0.0.0.0/", "http://[::ffff:10.0.0.1]/",
		"http://localhost/", "http://LOCALHOST./", "http://api.localhost/", "http://metadata.google.internal/computeMetadata/v1/",
		"http://metadata/", "http://printer.local/", "http://router.home.arpa/", "http://redis:6379/",
		"http://2130706433/", "http://0x7f.1/", "http://127.1/", "http://10.1/",
	}
	for _, u := range refused {
		err := none.CheckTarget(u)
		require.ErrorIs(t, err, spool.ErrInvalid, u)
		require.Contains(t, err.Error(), "allowlist", u)
	}
	for _, u := range []string{"https://example.com/hook", "http://93.184.216.34/x", "https://hooks.example.co.uk:8443/a?b=c", "http://[2606:2800:220:1::1]/"} {
		require.NoError(t, none.CheckTarget(u), u)
	}
	for _, u := range []string{"ftp://example.com/", "http://user:pw@example.com/"} {
		require.ErrorIs(t, none.CheckTarget(u), spool.ErrInvalid, u)
	}
	allow, err := webhook.ParseAllowlist([]string{"127.0.0.1", "10.0.0.0/8", "metadata.google.internal", "redis"})
	require.NoError(t, err)
	for _, u := range []string{"http://127.0.0.1:9/", "http://10.2.3.4/", "http://metadata.google.internal/", "http://redis:6379/"} {
		require.NoError(t, allow.CheckTarget(u), u)
	}
	require.Error(t, allow.CheckTarget("http://127.0.0.2/"))
}
