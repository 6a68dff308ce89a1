package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store/embedded"
	"github.com/spoolq/spool/internal/webhook"
)

const secret = "whsec-test"

var loopback = webhook.Allowlist{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

type delivered struct {
	body   []byte
	sig    string
	ctype  string
	status int
}

// receiver is a local HTTP receiver answering the statuses of answers in
// turn (then 204), recording every request.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	answers []int
	got     []delivered
	seen    chan delivered
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	r := &receiver{answers: answers, seen: make(chan delivered, 16)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusNoContent
		if len(r.answers) > 0 {
			status, r.answers = r.answers[0], r.answers[1:]
		}
		d := delivered{body: body, sig: req.Header.Get(spool.WebhookSignatureHeader), ctype: req.Header.Get("Content-Type"), status: status}
		r.got = append(r.got, d)
		r.mu.Unlock()
		w.WriteHeader(status)
		r.seen <- d
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivered(nil), r.got...)
}

type harness struct {
	e     *engine.Engine
	clock *engine.ManualClock
	ctx   context.Context
}

func newHarness(t *testing.T) *harness {
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	clock := engine.NewManualClock(time.Now())
	e, err := engine.New(engine.Config{Store: st, Clock: clock, Rand: func() float64 { return 0.5 }})
	require.NoError(t, err)
	t.Cleanup(func() {
		e.Stop()
		require.NoError(t, st.Close())
	})
	return &harness{e: e, clock: clock, ctx: context.Background()}
}

func (h *harness) dispatcher(t *testing.T, allow webhook.Allowlist) *webhook.Dispatcher {
	d, err := webhook.NewDispatcher(webhook.DispatcherConfig{Engine: h.e, Secret: secret, Sender: webhook.Config{Allowlist: allow}, Workers: 2})
	require.NoError(t, err)
	t.Cleanup(d.Stop)
	return d
}

// finish enqueues a job with a callback URL and runs it to success.
func (h *harness) finish(t *testing.T, url string) *spool.Job {
	res, err := h.e.Enqueue(h.ctx, "work", []spool.EnqueueRequest{{Type: "t", Payload: json.RawMessage(`{"n":1}`), CallbackURL: url}})
	require.NoError(t, err)
	jobs, err := h.e.Lease(h.ctx, spool.LeaseRequest{Queues: []string{"work"}})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	_, err = h.e.Complete(h.ctx, jobs[0].ID, spool.CompleteRequest{Token: jobs[0].Lease.Token, Result: json.RawMessage(`{"ok":true}`)})
	require.NoError(t, err)
	return res[0].Job
}

func (h *harness) deliveryJobs(t *testing.T) []*spool.Job {
	page, err := h.e.ListJobs(h.ctx, engine.ListParams{Queue: engine.WebhookQueue})
	require.NoError(t, err)
	return page.Jobs
}

func TestDispatcherDeliversSignedJob(t *testing.T) {
	h := newHarness(t)
	recv := newReceiver(t)
	d := h.dispatcher(t, loopback)
	require.NoError(t, d.Start(h.ctx))
	job := h.finish(t, recv.URL+"/hook")

	var got delivered
	select {
	case got = <-recv.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	require.NoError(t, client.VerifyWebhook(secret, got.sig, got.body, time.Minute))
	require.Error(t, client.VerifyWebhook("other", got.sig, got.body, time.Minute))
	require.Equal(t, "application/json", got.ctype)
	var sent spool.Job
	require.NoError(t, json.Unmarshal(got.body, &sent))
	require.Equal(t, job.ID, sent.ID)
	require.Equal(t, spool.StateSucceeded, sent.State)
	require.JSONEq(t, `{"ok":true}`, string(sent.Result))
	require.Equal(t, recv.URL+"/hook", sent.CallbackURL)

	// The delivery job completes (waited for: the answer is read after
	// the receiver has seen the request).
	dj := h.deliveryJobs(t)
	require.Len(t, dj, 1)
	require.Equal(t, engine.WebhookJobType, dj[0].Type)
	done, err := h.e.Get(h.ctx, dj[0].ID, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, spool.StateSucceeded, done.State)
	d.Stop()
}

func TestDispatcherRetriesUntilSuccess(t *testing.T) {
	h := newHarness(t)
	recv := newReceiver(t, http.StatusInternalServerError, http.StatusServiceUnavailable)
	d := h.dispatcher(t, loopback)
	h.finish(t, recv.URL)

	for i := range 3 {
		ok, err := d.RunOnce(h.ctx)
		require.NoError(t, err)
		require.True(t, ok, "attempt %d", i+1)
		// Nothing more is due before the backoff passes.
		ok, err = d.RunOnce(h.ctx)
		require.NoError(t, err)
		require.False(t, ok)
		h.clock.Advance(engine.WebhookBackoffMax)
		require.NoError(t, h.e.Maintain(h.ctx))
	}
	ok, err := d.RunOnce(h.ctx)
	require.NoError(t, err)
	require.False(t, ok, "a succeeded delivery is not made again")

	got := recv.deliveries()
	require.Len(t, got, 3)
	successes := 0
	for _, g := range got {
		require.NoError(t, client.VerifyWebhook(secret, g.sig, g.body, time.Minute))
		if g.status/100 == 2 {
			successes++
		}
	}
	require.Equal(t, 1, successes)
	dj := h.deliveryJobs(t)
	require.Len(t, dj, 1)
	require.Equal(t, spool.StateSucceeded, dj[0].State)
	require.Equal(t, 3, dj[0].Attempt)
	require.Len(t, dj[0].Errors, 2)
	require.Contains(t, dj[0].Errors[0].Error, "500")
}

func TestDispatcherRefusesTargetOutsideAllowlist(t *testing.T) {
	h := newHarness(t)
	recv := newReceiver(t)
	d := h.dispatcher(t, webhook.Allowlist{}) // loopback not allowed
	h.finish(t, recv.URL)

	ok, err := d.RunOnce(h.ctx)
	require.NoError(t, err)
	require.True(t, ok)
	require.Empty(t, recv.deliveries(), "nothing reaches a refused target")
	dj := h.deliveryJobs(t)
	require.Len(t, dj, 1)
	require.Equal(t, spool.StateDead, dj[0].State, "a refused target is not retried")
	require.Equal(t, 1, dj[0].Attempt)
	require.Len(t, dj[0].Errors, 1)
	require.Contains(t, dj[0].Errors[0].Error, "webhook target refused")
	require.Contains(t, dj[0].Errors[0].Error, "127.0.0.1")
}

func TestDeliveryIsEnqueuedOncePerTerminalState(t *testing.T) {
	h := newHarness(t)
	h.finish(t, "https://example.com/hook")
	// A job without callback gets none.
	_, err := h.e.Enqueue(h.ctx, "work", []spool.EnqueueRequest{{Type: "t"}})
	require.NoError(t, err)
	jobs, err := h.e.Lease(h.ctx, spool.LeaseRequest{Queues: []string{"work"}})
	require.NoError(t, err)
	_, err = h.e.Complete(h.ctx, jobs[0].ID, spool.CompleteRequest{Token: jobs[0].Lease.Token})
	require.NoError(t, err)
	dj := h.deliveryJobs(t)
	require.Len(t, dj, 1)
	require.Equal(t, spool.StateReady, dj[0].State)
	require.Equal(t, engine.WebhookMaxAttempts, dj[0].MaxAttempts)
}

func TestParseAllowlist(t *testing.T) {
	a, err := webhook.ParseAllowlist([]string{"10.0.0.0/8", "127.0.0.1", "::1", "Hooks.Internal."})
	require.NoError(t, err)
	require.NoError(t, a.Check(netip.MustParseAddr("10.2.3.4")))
	require.NoError(t, a.Check(netip.MustParseAddr("127.0.0.1")))
	require.NoError(t, a.Check(netip.MustParseAddr("::1")))
	require.ErrorIs(t, a.Check(netip.MustParseAddr("192.168.0.1")), webhook.ErrRefused)
	require.Equal(t, []string{"hooks.internal"}, a.Hosts)
	_, err = webhook.ParseAllowlist([]string{"10.0.0.0/99"})
	require.Error(t, err)
	_, err = webhook.ParseAllowlist([]string{"http://x"})
	require.Error(t, err)
}

func TestCancelledJobGetsADelivery(t *testing.T) {
	h := newHarness(t)
	res, err := h.e.Enqueue(h.ctx, "work", []spool.EnqueueRequest{{Type: "t", CallbackURL: "https://example.com/hook"}})
	require.NoError(t, err)
	_, err = h.e.Cancel(h.ctx, res[0].Job.ID)
	require.NoError(t, err)
	dj := h.deliveryJobs(t)
	require.Len(t, dj, 1)
	full, err := h.e.Get(h.ctx, dj[0].ID, 0) // lists leave payloads out
	require.NoError(t, err)
	var p engine.WebhookDelivery
	require.NoError(t, json.Unmarshal(full.Payload, &p))
	require.Equal(t, engine.WebhookDelivery{JobID: res[0].Job.ID, URL: "https://example.com/hook"}, p)
}
