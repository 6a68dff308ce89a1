package server_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/servertest"
	"github.com/spoolq/spool/server"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func withClock(c engine.Clock) func(*server.Config) {
	return func(cfg *server.Config) { cfg.Clock = c }
}

// The quick start: enqueue, lease, complete with a result, read it back.
func TestQuickStartFlow(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	r := ts.do("POST", "/v1/queues/emails/jobs", `{"type":"send_welcome","payload":{"user_id":42}}`)
	var job spool.Job
	r.ok(t, http.StatusAccepted, &job)
	require.Equal(t, "/v1/jobs/"+job.ID, r.h.Get("Location"))
	require.Equal(t, "emails", job.Queue)
	require.Equal(t, "send_welcome", job.Type)
	require.Equal(t, spool.StateReady, job.State)
	require.JSONEq(t, `{"user_id":42}`, string(job.Payload))
	require.Nil(t, job.Lease, "only lease answers carry a token")

	leased := ts.lease(spool.LeaseRequest{Queues: []string{"emails"}, Max: 10, Wait: dur(time.Second), Lease: dur(time.Minute), Worker: "w1"})
	require.Len(t, leased, 1)
	l := leased[0]
	require.Equal(t, job.ID, l.ID)
	require.Equal(t, spool.StateActive, l.State)
	require.Equal(t, 1, l.Attempt)
	require.Equal(t, "w1", l.Worker)
	require.NotEmpty(t, l.Lease.Token)
	require.JSONEq(t, `{"user_id":42}`, string(l.Payload))

	var done spool.Job
	ts.do("POST", "/v1/jobs/"+job.ID+"/complete", spool.CompleteRequest{Token: l.Lease.Token, Result: json.RawMessage(`{"sent":true}`)}).ok(t, http.StatusOK, &done)
	require.Equal(t, spool.StateSucceeded, done.State)

	got := ts.get(strings.ToUpper(job.ID)) // ids are read in any case
	require.Equal(t, job.ID, got.ID)
	require.Equal(t, spool.StateSucceeded, got.State)
	require.JSONEq(t, `{"sent":true}`, string(got.Result))
	require.NotNil(t, got.FinishedAt)
	require.Nil(t, got.Lease)
}

func TestFailRetryDeadAndRetryAgain(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	// A failure with attempts left is retried after a backoff, error kept.
	a := ts.enqueue("work", spool.EnqueueRequest{Type: "a", MaxAttempts: 3, Backoff: &spool.Backoff{Base: spool.Duration(time.Hour)}})
	la := ts.leaseOne("work")
	require.Equal(t, a.ID, la.ID)
	var failed spool.Job
	ts.do("POST", "/v1/jobs/"+a.ID+"/fail", spool.FailRequest{Token: la.Lease.Token, Error: "smtp timeout"}).ok(t, http.StatusOK, &failed)
	require.Equal(t, spool.StateScheduled, failed.State)
	require.True(t, failed.RunAt.After(time.Now().Add(20*time.Minute)), "retried after the backoff, not at once: run_at %s", failed.RunAt)
	require.Len(t, failed.Errors, 1)
	require.Equal(t, "smtp timeout", failed.Errors[0].Error)
	require.Equal(t, 1, failed.Errors[0].Attempt)
	require.Empty(t, ts.lease(spool.LeaseRequest{Queues: []string{"work"}}), "a scheduled retry is not leasable")

	// retry_in 0s makes it ready at once; a final failure makes it dead.
	b := ts.enqueue("work", spool.EnqueueRequest{Type: "b", MaxAttempts: 5})
	lb := ts.leaseOne("work")
	require.Equal(t, b.ID, lb.ID)
	ts.do("POST", "/v1/jobs/"+b.ID+"/fail", spool.FailRequest{Token: lb.Lease.Token, Error: "first", RetryIn: dur(0)}).ok(t, http.StatusOK, &failed)
	require.Equal(t, spool.StateReady, failed.State)
	lb = ts.leaseOne("work")
	require.Equal(t, 2, lb.Attempt)
	ts.do("POST", "/v1/jobs/"+b.ID+"/fail", spool.FailRequest{Token: lb.Lease.Token, Error: "second", Final: true}).ok(t, http.StatusOK, &failed)
	require.Equal(t, spool.StateDead, failed.State)
	require.Len(t, failed.Errors, 2)

	// Attempts spent: dead without final.
	c := ts.enqueue("once", spool.EnqueueRequest{Type: "c", MaxAttempts: 1})
	lc := ts.leaseOne("once")
	ts.do("POST", "/v1/jobs/"+c.ID+"/fail", spool.FailRequest{Token: lc.Lease.Token, Error: "nope"}).ok(t, http.StatusOK, &failed)
	require.Equal(t, spool.StateDead, failed.State)

	// Retry of a dead job: ready again, errors kept, attempts fresh.
	var retried spool.Job
	ts.do("POST", "/v1/jobs/"+b.ID+"/retry", nil).ok(t, http.StatusOK, &retried)
	require.Equal(t, spool.StateReady, retried.State)
	require.Equal(t, 0, retried.Attempt)
	require.Len(t, retried.Errors, 2)
	lb = ts.leaseOne("work")
	require.Equal(t, b.ID, lb.ID)
	require.Equal(t, 1, lb.Attempt)

	// An empty JSON object is accepted as "no body".
	ts.do("POST", "/v1/jobs/"+c.ID+"/retry", `{}`).ok(t, http.StatusOK, &retried)
	require.Equal(t, spool.StateReady, retried.State)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	// A ready job is cancelled at once.
	a := ts.enqueue("q", spool.EnqueueRequest{Type: "a"})
	var got spool.Job
	ts.do("DELETE", "/v1/jobs/"+a.ID, nil).ok(t, http.StatusOK, &got)
	require.Equal(t, spool.StateCancelled, got.State)
	require.Equal(t, spool.StateCancelled, ts.get(a.ID).State)
	ts.do("DELETE", "/v1/jobs/"+a.ID, nil).fails(t, http.StatusConflict, spool.CodeConflict)

	// An active job is marked; its next heartbeat cancels it.
	b := ts.enqueue("q", spool.EnqueueRequest{Type: "b"})
	lb := ts.leaseOne("q")
	require.Equal(t, b.ID, lb.ID)
	ts.do("DELETE", "/v1/jobs/"+b.ID, nil).ok(t, http.StatusOK, &got)
	require.Equal(t, spool.StateActive, got.State)
	require.True(t, got.CancelRequested)

	var hb spool.HeartbeatResponse
	ts.do("POST", "/v1/jobs/"+b.ID+"/heartbeat", spool.HeartbeatRequest{Token: lb.Lease.Token}).ok(t, http.StatusOK, &hb)
	require.True(t, hb.CancelRequested)
	require.Equal(t, spool.StateCancelled, hb.State)
	require.Equal(t, spool.StateCancelled, ts.get(b.ID).State)
	// The lease is gone with it.
	ts.do("POST", "/v1/jobs/"+b.ID+"/complete", spool.CompleteRequest{Token: lb.Lease.Token}).fails(t, http.StatusConflict, spool.CodeLeaseLost)

	// A cancelled job can be retried.
	ts.do("POST", "/v1/jobs/"+b.ID+"/retry", nil).ok(t, http.StatusOK, &got)
	require.Equal(t, spool.StateReady, got.State)
}

// A lease that lapsed and went to another worker fences the first one out.
func TestStaleTokenIsRefused(t *testing.T) {
	t.Parallel()
	clock := engine.NewManualClock(t0)
	ts := newTestServer(t, withClock(clock))
	ctx := context.Background()

	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t", Backoff: &spool.Backoff{Base: spool.Duration(time.Second), Max: spool.Duration(time.Second)}})
	first := ts.lease(spool.LeaseRequest{Queues: []string{"q"}, Lease: dur(time.Second), Worker: "w1"})[0]

	clock.Advance(2 * time.Second) // the lease lapses
	require.NoError(t, servertest.Engine(ts.s).Maintain(ctx))
	require.Equal(t, spool.StateScheduled, ts.get(j.ID).State)
	clock.Advance(5 * time.Second) // the retry is due
	require.NoError(t, servertest.Engine(ts.s).Maintain(ctx))
	second := ts.lease(spool.LeaseRequest{Queues: []string{"q"}, Lease: dur(time.Minute), Worker: "w2"})
	require.Len(t, second, 1)
	require.NotEqual(t, first.Lease.Token, second[0].Lease.Token)

	before := ts.get(j.ID)
	require.Equal(t, spool.StateActive, before.State)
	require.Equal(t, 2, before.Attempt)
	stale := first.Lease.Token
	ts.do("POST", "/v1/jobs/"+j.ID+"/complete", spool.CompleteRequest{Token: stale, Result: json.RawMessage(`1`)}).fails(t, http.StatusConflict, spool.CodeLeaseLost)
	ts.do("POST", "/v1/jobs/"+j.ID+"/fail", spool.FailRequest{Token: stale, Error: "x"}).fails(t, http.StatusConflict, spool.CodeLeaseLost)
	ts.do("POST", "/v1/jobs/"+j.ID+"/heartbeat", spool.HeartbeatRequest{Token: stale}).fails(t, http.StatusConflict, spool.CodeLeaseLost)
	require.Equal(t, before, ts.get(j.ID), "a stale token changes nothing")

	var done spool.Job
	ts.do("POST", "/v1/jobs/"+j.ID+"/complete", spool.CompleteRequest{Token: second[0].Lease.Token}).ok(t, http.StatusOK, &done)
	require.Equal(t, spool.StateSucceeded, done.State)
	require.Len(t, done.Errors, 1, "the lapsed lease counts as a failed attempt")
}

func TestDelayedJobIsScheduledAndNotLeasable(t *testing.T) {
	t.Parallel()
	clock := engine.NewManualClock(t0)
	ts := newTestServer(t, withClock(clock))

	j := ts.enqueue("q", spool.EnqueueRequest{Type: "later", Delay: dur(time.Hour)})
	require.Equal(t, spool.StateScheduled, j.State)
	require.True(t, j.RunAt.Equal(t0.Add(time.Hour)), "run_at %s", j.RunAt)
	at := ts.enqueue("q", spool.EnqueueRequest{Type: "at", RunAt: ptr(t0.Add(2 * time.Hour))})
	require.Equal(t, spool.StateScheduled, at.State)
	require.Empty(t, ts.lease(spool.LeaseRequest{Queues: []string{"q"}, Max: 10}))

	clock.Advance(time.Hour)
	require.NoError(t, servertest.Engine(ts.s).Maintain(context.Background()))
	got := ts.lease(spool.LeaseRequest{Queues: []string{"q"}, Max: 10})
	require.Len(t, got, 1)
	require.Equal(t, j.ID, got[0].ID)
}

func TestPriorities(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	low := ts.enqueue("q", spool.EnqueueRequest{Type: "low", Priority: -5})
	mid := ts.enqueue("q", spool.EnqueueRequest{Type: "mid"})
	high := ts.enqueue("q", spool.EnqueueRequest{Type: "high", Priority: 10})
	mid2 := ts.enqueue("q", spool.EnqueueRequest{Type: "mid2"})
	var order []string
	for range 4 {
		order = append(order, ts.leaseOne("q").ID)
	}
	require.Equal(t, []string{high.ID, mid.ID, mid2.ID, low.ID}, order, "priority first, then FIFO")
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	// In the body.
	first := ts.enqueue("q", spool.EnqueueRequest{Type: "t", IdempotencyKey: "order-1"})
	var again spool.Job
	r := ts.do("POST", "/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t", IdempotencyKey: "order-1"})
	r.ok(t, http.StatusOK, &again)
	require.Equal(t, first.ID, again.ID)
	require.Equal(t, "/v1/jobs/"+first.ID, r.h.Get("Location"))

	// In the header.
	var h1, h2 spool.Job
	ts.do("POST", "/v1/queues/q/jobs", `{"type":"t"}`, "Idempotency-Key", "order-2").ok(t, http.StatusAccepted, &h1)
	require.Equal(t, "order-2", h1.IdempotencyKey)
	ts.do("POST", "/v1/queues/q/jobs", `{"type":"t"}`, "Idempotency-Key", "order-2").ok(t, http.StatusOK, &h2)
	require.Equal(t, h1.ID, h2.ID)
	// Both, equal: fine.
	ts.do("POST", "/v1/queues/q/jobs", `{"type":"t","idempotency_key":"order-2"}`, "Idempotency-Key", "order-2").ok(t, http.StatusOK, &h2)
	require.Equal(t, h1.ID, h2.ID)

	require.EqualValues(t, 2, ts.queue("q").Counts[spool.StateReady], "no second job was stored")
}

// A retried enqueue (same key) gets the original job even when the queue
// has filled up meanwhile: the client must not see 503 for a job it has.
func TestIdempotentRepeatOnFullQueue(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.patch("q", spool.QueueConfig{MaxDepth: ptr[int64](1)})
	first := ts.enqueue("q", spool.EnqueueRequest{Type: "t", IdempotencyKey: "k"})
	var again spool.Job
	ts.do("POST", "/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t", IdempotencyKey: "k"}).ok(t, http.StatusOK, &again)
	require.Equal(t, first.ID, again.ID)
}

func TestBatchEnqueue(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	body := spool.BatchEnqueueRequest{Jobs: []spool.EnqueueRequest{
		{Type: "a", IdempotencyKey: "ka"}, {Type: "b", Delay: dur(time.Hour)}, {Type: "c", Priority: 3},
	}}
	var out spool.JobsResponse
	ts.do("POST", "/v1/queues/q/jobs:batch", body).ok(t, http.StatusAccepted, &out)
	require.Len(t, out.Jobs, 3)
	for i, typ := range []string{"a", "b", "c"} {
		require.Equal(t, typ, out.Jobs[i].Type, "request order")
		require.Equal(t, "q", out.Jobs[i].Queue)
	}
	require.Equal(t, spool.StateScheduled, out.Jobs[1].State)

	// All repeats: 200 with the originals.
	var again spool.JobsResponse
	ts.do("POST", "/v1/queues/q/jobs:batch", spool.BatchEnqueueRequest{Jobs: body.Jobs[:1]}).ok(t, http.StatusOK, &again)
	require.Equal(t, out.Jobs[0].ID, again.Jobs[0].ID)

	// An Idempotency-Key header covers the whole batch.
	hb := `{"jobs":[{"type":"x"},{"type":"y"}]}`
	var h1, h2 spool.JobsResponse
	ts.do("POST", "/v1/queues/hq/jobs:batch", hb, "Idempotency-Key", "batch-7").ok(t, http.StatusAccepted, &h1)
	require.Equal(t, "batch-7#0", h1.Jobs[0].IdempotencyKey)
	ts.do("POST", "/v1/queues/hq/jobs:batch", hb, "Idempotency-Key", "batch-7").ok(t, http.StatusOK, &h2)
	require.Equal(t, []string{h1.Jobs[0].ID, h1.Jobs[1].ID}, []string{h2.Jobs[0].ID, h2.Jobs[1].ID})
	require.EqualValues(t, 2, ts.queue("hq").Depth)
}

// "Prefer: return=minimal" answers a batch with the jobs' ids only; the
// jobs are stored exactly as without it.
func TestBatchEnqueueReturnMinimal(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	body := `{"jobs":[{"type":"a","idempotency_key":"ka"},{"type":"b","delay":"1h"},{"type":"c","payload":{"n":3}}]}`
	r := ts.do("POST", "/v1/queues/q/jobs:batch", body, "Prefer", "return=minimal")
	require.Equal(t, "return=minimal", r.h.Get("Preference-Applied"))
	require.Contains(t, r.h.Values("Vary"), "Prefer")
	require.JSONEq(t, `["ids"]`, keysOf(t, r.body), "only the ids: %s", r.body)
	var out spool.JobIDsResponse
	r.ok(t, http.StatusAccepted, &out)
	require.Len(t, out.IDs, 3)
	require.Empty(t, out.Existing)
	for i, typ := range []string{"a", "b", "c"} {
		j := ts.get(out.IDs[i])
		require.Equal(t, typ, j.Type, "request order")
		require.Equal(t, "q", j.Queue)
	}
	require.Equal(t, spool.StateScheduled, ts.get(out.IDs[1]).State)
	require.JSONEq(t, `{"n":3}`, string(ts.get(out.IDs[2]).Payload))

	// A repeated idempotency key names the earlier job and its index.
	var again spool.JobIDsResponse
	ts.do("POST", "/v1/queues/q/jobs:batch", `{"jobs":[{"type":"d"},{"type":"a","idempotency_key":"ka"}]}`,
		"Prefer", `respond-async, RETURN="minimal"; x=y`).ok(t, http.StatusAccepted, &again)
	require.Len(t, again.IDs, 2)
	require.Equal(t, out.IDs[0], again.IDs[1])
	require.Equal(t, []int{1}, again.Existing)
	require.EqualValues(t, 4, ts.queue("q").Depth)

	// Without the preference, or with another one, the jobs come back.
	for _, prefer := range []string{"", "return=representation", "minimal", "return=minimal-ish", "handling=lenient"} {
		r := ts.do("POST", "/v1/queues/p/jobs:batch", `{"jobs":[{"type":"e"}]}`, "Prefer", prefer)
		require.Empty(t, r.h.Get("Preference-Applied"), "Prefer: %q", prefer)
		var full spool.JobsResponse
		r.ok(t, http.StatusAccepted, &full)
		require.Len(t, full.Jobs, 1, "Prefer: %q", prefer)
		require.Equal(t, "e", full.Jobs[0].Type)
	}

	// Refusals are the same with the preference: nothing is stored.
	ts.do("POST", "/v1/queues/q/jobs:batch", `{"jobs":[{"type":"a"},{"type":""}]}`, "Prefer", "return=minimal").
		fails(t, http.StatusBadRequest, spool.CodeInvalid)
	require.EqualValues(t, 4, ts.queue("q").Depth)
}

// keysOf returns the top-level keys of a JSON object.
func keysOf(t *testing.T, body []byte) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m), "body: %s", body)
	keys, err := json.Marshal(slices.Sorted(maps.Keys(m)))
	require.NoError(t, err)
	return string(keys)
}

// A batch that does not fit is refused whole, with a Retry-After.
func TestBatchAllOrNothingWhenFull(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	q := ts.patch("q", spool.QueueConfig{MaxDepth: ptr[int64](3)})
	require.EqualValues(t, 3, *q.Config.MaxDepth)
	ts.enqueue("q", spool.EnqueueRequest{Type: "first"})

	r := ts.do("POST", "/v1/queues/q/jobs:batch", `{"jobs":[{"type":"a"},{"type":"b"},{"type":"c"}]}`)
	e := r.fails(t, http.StatusServiceUnavailable, spool.CodeQueueFull)
	require.Contains(t, e.Message, `"q"`)
	ra, err := strconv.Atoi(r.h.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q must be whole seconds", r.h.Get("Retry-After"))
	require.GreaterOrEqual(t, ra, 1)

	info := ts.queue("q")
	require.EqualValues(t, 1, info.Depth, "nothing of the batch was stored")
	var page spool.JobList
	ts.do("GET", "/v1/queues/q/jobs", nil).ok(t, http.StatusOK, &page)
	require.Len(t, page.Jobs, 1)

	// What fits is taken.
	var out spool.JobsResponse
	ts.do("POST", "/v1/queues/q/jobs:batch", `{"jobs":[{"type":"a"},{"type":"b"}]}`).ok(t, http.StatusAccepted, &out)
	require.Len(t, out.Jobs, 2)
	ts.do("POST", "/v1/queues/q/jobs", `{"type":"z"}`).fails(t, http.StatusServiceUnavailable, spool.CodeQueueFull)
}

// GET ?wait= returns as soon as the job finishes.
func TestGetWaitWokenByComplete(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	ts := newWrappedServer(t, signalOn("GET", "/v1/jobs/", entered))
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	l := ts.leaseOne("q")

	type result struct {
		r   *resp
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := ts.send("GET", "/v1/jobs/"+j.ID+"?wait=2m", nil)
		done <- result{r, err}
	}()
	<-entered
	ts.do("POST", "/v1/jobs/"+j.ID+"/complete", spool.CompleteRequest{Token: l.Lease.Token, Result: json.RawMessage(`"ok"`)}).ok(t, http.StatusOK, nil)
	select {
	case res := <-done:
		require.NoError(t, res.err)
		var got spool.Job
		res.r.ok(t, http.StatusOK, &got)
		require.Equal(t, spool.StateSucceeded, got.State)
		require.JSONEq(t, `"ok"`, string(got.Result))
	case <-time.After(time.Minute):
		t.Fatal("the waiting GET was not woken by the complete")
	}

	// A wait that ends with nothing answers with the job as it is.
	k := ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	var got spool.Job
	ts.do("GET", "/v1/jobs/"+k.ID+"?wait=10ms", nil).ok(t, http.StatusOK, &got)
	require.Equal(t, spool.StateReady, got.State)
	// A finished job answers at once, whatever the wait.
	ts.do("GET", "/v1/jobs/"+j.ID+"?wait=5m", nil).ok(t, http.StatusOK, &got)
	require.Equal(t, spool.StateSucceeded, got.State)
}

// signalOn wraps a handler to signal (without blocking) when a request
// whose path starts with prefix arrives.
func signalOn(method, prefix string, ch chan<- struct{}) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == method && len(r.URL.Path) >= len(prefix) && r.URL.Path[:len(prefix)] == prefix {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			h.ServeHTTP(w, r)
		})
	}
}
