package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store/embedded"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type harness struct {
	e     *engine.Engine
	clock *engine.ManualClock
	ctx   context.Context
}

// newHarness builds an engine on a real embedded store in a temp dir, with
// a manual clock and jitter fixed at rnd.
func newHarness(t *testing.T, rnd float64) *harness {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	clock := engine.NewManualClock(t0)
	e, err := engine.New(engine.Config{Store: st, Clock: clock, Rand: func() float64 { return rnd }})
	require.NoError(t, err)
	t.Cleanup(func() {
		e.Stop()
		require.NoError(t, st.Close())
	})
	return &harness{e: e, clock: clock, ctx: context.Background()}
}

func (h *harness) enqueue(t *testing.T, q string, reqs ...spool.EnqueueRequest) []*spool.Job {
	t.Helper()
	res, err := h.e.Enqueue(h.ctx, q, reqs)
	require.NoError(t, err)
	jobs := make([]*spool.Job, len(res))
	for i, r := range res {
		jobs[i] = r.Job
	}
	return jobs
}

func (h *harness) lease(t *testing.T, max int, lease time.Duration, qs ...string) []*spool.Job {
	t.Helper()
	d := spool.Duration(lease)
	jobs, err := h.e.Lease(h.ctx, spool.LeaseRequest{Queues: qs, Max: max, Lease: &d, Worker: "w1"})
	require.NoError(t, err)
	return jobs
}

func (h *harness) get(t *testing.T, id string) *spool.Job {
	t.Helper()
	j, err := h.e.Get(h.ctx, id, 0)
	require.NoError(t, err)
	return j
}

func (h *harness) maintain(t *testing.T) {
	t.Helper()
	require.NoError(t, h.e.Maintain(h.ctx))
}

func dur(d time.Duration) *spool.Duration { v := spool.Duration(d); return &v }

func TestBackoffScheduleFollowsPolicy(t *testing.T) {
	t.Parallel()
	// Jitter fixed at 1: each delay is the full nominal one.
	h := newHarness(t, 1)
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t", MaxAttempts: 10,
		Backoff: &spool.Backoff{Base: spool.Duration(2 * time.Second), Max: spool.Duration(10 * time.Second)}})[0]
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		got := h.lease(t, 1, time.Minute, "q")
		require.Len(t, got, 1, "attempt %d", i+1)
		require.Equal(t, i+1, got[0].Attempt)
		failed, err := h.e.Fail(h.ctx, j.ID, spool.FailRequest{Token: got[0].Lease.Token, Error: "boom"})
		require.NoError(t, err)
		require.Equal(t, spool.StateScheduled, failed.State)
		require.Equal(t, h.clock.Now().Add(w), failed.RunAt, "retry after attempt %d", i+1)
		require.Len(t, failed.Errors, i+1)
		require.Equal(t, "boom", failed.Errors[i].Error)
		// Not leasable before its time, leasable after.
		h.clock.Advance(w - time.Millisecond)
		h.maintain(t)
		require.Empty(t, h.lease(t, 1, time.Minute, "q"))
		h.clock.Advance(time.Millisecond)
		h.maintain(t)
	}
}

func TestBackoffJitterStaysWithinHalfAndFull(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0) // jitter at its low end: half the nominal delay
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})[0]
	got := h.lease(t, 1, time.Minute, "q")
	failed, err := h.e.Fail(h.ctx, j.ID, spool.FailRequest{Token: got[0].Lease.Token, Error: "x"})
	require.NoError(t, err)
	base := engine.DefaultDefaults.BackoffBase
	require.Equal(t, h.clock.Now().Add(base/2), failed.RunAt)
	require.Equal(t, 25, failed.MaxAttempts, "default max_attempts")
}

func TestFailFinalAndExhaustedGoDead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	a := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t", MaxAttempts: 1})[0]
	b := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t", MaxAttempts: 5})[0]
	leased := h.lease(t, 2, time.Minute, "q")
	require.Len(t, leased, 2)
	ja, err := h.e.Fail(h.ctx, a.ID, spool.FailRequest{Token: leased[0].Lease.Token, Error: "only try"})
	require.NoError(t, err)
	require.Equal(t, spool.StateDead, ja.State)
	require.NotNil(t, ja.FinishedAt)
	jb, err := h.e.Fail(h.ctx, b.ID, spool.FailRequest{Token: leased[1].Lease.Token, Error: "bad input", Final: true})
	require.NoError(t, err)
	require.Equal(t, spool.StateDead, jb.State)

	// Retry of a dead job makes it ready with fresh attempts.
	r, err := h.e.Retry(h.ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, spool.StateReady, r.State)
	require.Equal(t, 0, r.Attempt)
	require.Len(t, r.Errors, 1, "past errors are kept")
	again := h.lease(t, 1, time.Minute, "q")
	require.Len(t, again, 1)
	require.Equal(t, a.ID, again[0].ID)
	_, err = h.e.Retry(h.ctx, a.ID)
	require.ErrorIs(t, err, spool.ErrConflict, "an active job cannot be retried")
}

func TestRetryInZeroRequeuesAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})[0]
	l := h.lease(t, 1, time.Minute, "q")
	f, err := h.e.Fail(h.ctx, j.ID, spool.FailRequest{Token: l[0].Lease.Token, Error: "x", RetryIn: dur(0)})
	require.NoError(t, err)
	require.Equal(t, spool.StateReady, f.State)
	require.Len(t, h.lease(t, 1, time.Minute, "q"), 1)
}

func TestLeaseExpiryCountsAsFailedAttempt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t", MaxAttempts: 2,
		Backoff: &spool.Backoff{Base: spool.Duration(time.Second), Max: spool.Duration(time.Second)}})[0]
	first := h.lease(t, 1, 10*time.Second, "q")
	require.Len(t, first, 1)

	h.clock.Advance(10*time.Second - time.Millisecond)
	h.maintain(t)
	require.Equal(t, spool.StateActive, h.get(t, j.ID).State, "lease still valid")

	h.clock.Advance(time.Millisecond)
	h.maintain(t)
	got := h.get(t, j.ID)
	require.Equal(t, spool.StateScheduled, got.State)
	require.Len(t, got.Errors, 1)
	require.Contains(t, got.Errors[0].Error, "lease expired")
	require.Contains(t, got.Errors[0].Error, "w1", "the error names the worker that held the lease")

	// The old token is fenced off.
	_, err := h.e.Complete(h.ctx, j.ID, spool.CompleteRequest{Token: first[0].Lease.Token})
	require.ErrorIs(t, err, spool.ErrLeaseLost)

	h.clock.Advance(time.Second)
	h.maintain(t)
	second := h.lease(t, 1, 10*time.Second, "q")
	require.Len(t, second, 1)
	require.Equal(t, 2, second[0].Attempt)
	require.NotEqual(t, first[0].Lease.Token, second[0].Lease.Token)

	h.clock.Advance(11 * time.Second)
	h.maintain(t)
	require.Equal(t, spool.StateDead, h.get(t, j.ID).State, "attempts exhausted by expiry")
}

func TestHeartbeatExtendsLeaseAndRecordsProgress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})[0]
	l := h.lease(t, 1, 10*time.Second, "q")
	h.clock.Advance(8 * time.Second)
	resp, err := h.e.Heartbeat(h.ctx, j.ID, spool.HeartbeatRequest{Token: l[0].Lease.Token, Extend: dur(10 * time.Second),
		Progress: &spool.ProgressUpdate{Percent: 40, Message: "rendering"}})
	require.NoError(t, err)
	require.Equal(t, h.clock.Now().Add(10*time.Second), *resp.LeaseExpiresAt)
	require.False(t, resp.CancelRequested)
	h.clock.Advance(8 * time.Second) // past the first expiry, within the extension
	h.maintain(t)
	got := h.get(t, j.ID)
	require.Equal(t, spool.StateActive, got.State)
	require.Equal(t, "w1", got.Worker)
	require.Equal(t, 40.0, got.Progress.Percent)
	require.Equal(t, "rendering", got.Progress.Message)

	_, err = h.e.Heartbeat(h.ctx, j.ID, spool.HeartbeatRequest{Token: "wrong"})
	require.ErrorIs(t, err, spool.ErrLeaseLost)
}

func TestHeartbeatPastTimeoutFailsTheAttempt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t", Timeout: dur(30 * time.Second)})[0]
	l := h.lease(t, 1, time.Minute, "q")
	h.clock.Advance(31 * time.Second)
	_, err := h.e.Heartbeat(h.ctx, j.ID, spool.HeartbeatRequest{Token: l[0].Lease.Token})
	require.ErrorIs(t, err, spool.ErrLeaseLost)
	got := h.get(t, j.ID)
	require.Equal(t, spool.StateScheduled, got.State)
	require.Contains(t, got.Errors[0].Error, "timed out")
}

func TestCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	jobs := h.enqueue(t, "q",
		spool.EnqueueRequest{Type: "t", Priority: 5},
		spool.EnqueueRequest{Type: "t"},
		spool.EnqueueRequest{Type: "t", Delay: dur(time.Hour)})
	active := h.lease(t, 1, time.Minute, "q")
	require.Equal(t, jobs[0].ID, active[0].ID)

	for _, j := range jobs[1:] {
		c, err := h.e.Cancel(h.ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, spool.StateCancelled, c.State)
	}
	c, err := h.e.Cancel(h.ctx, jobs[0].ID)
	require.NoError(t, err)
	require.Equal(t, spool.StateActive, c.State)
	require.True(t, c.CancelRequested)
	resp, err := h.e.Heartbeat(h.ctx, jobs[0].ID, spool.HeartbeatRequest{Token: active[0].Lease.Token})
	require.NoError(t, err)
	require.True(t, resp.CancelRequested)
	require.Nil(t, resp.LeaseExpiresAt, "a cancelled job has no lease")
	require.Equal(t, spool.StateCancelled, h.get(t, jobs[0].ID).State)

	_, err = h.e.Cancel(h.ctx, jobs[0].ID)
	require.ErrorIs(t, err, spool.ErrConflict)
	require.Empty(t, h.lease(t, 10, time.Minute, "q"))
}

func TestDelayedJobsArePromotedWhenDue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	at := t0.Add(90 * time.Second)
	jobs := h.enqueue(t, "q",
		spool.EnqueueRequest{Type: "delay", Delay: dur(5 * time.Second)},
		spool.EnqueueRequest{Type: "run_at", RunAt: &at})
	require.Equal(t, spool.StateScheduled, jobs[0].State)
	require.Equal(t, spool.StateScheduled, jobs[1].State)
	require.Empty(t, h.lease(t, 10, time.Minute, "q"))

	h.clock.Advance(5 * time.Second)
	h.maintain(t)
	got := h.lease(t, 10, time.Minute, "q")
	require.Len(t, got, 1)
	require.Equal(t, "delay", got[0].Type)

	h.clock.Set(at)
	h.maintain(t)
	got = h.lease(t, 10, time.Minute, "q")
	require.Len(t, got, 1)
	require.Equal(t, "run_at", got[0].Type)
}

func TestRetryAfterFollowsDrainRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	_, err := h.e.PatchQueue(h.ctx, "q", spool.QueueConfig{MaxDepth: ptr(int64(20))})
	require.NoError(t, err)
	reqs := make([]spool.EnqueueRequest, 20)
	for i := range reqs {
		reqs[i] = spool.EnqueueRequest{Type: "t"}
	}
	h.enqueue(t, "q", reqs...)

	// Nothing has drained yet: the estimate is the whole rate window.
	_, err = h.e.Enqueue(h.ctx, "q", reqs[:1])
	var qf *spool.QueueFullError
	require.ErrorAs(t, err, &qf)
	require.Equal(t, 60, qf.RetryAfter)

	// Finish 12 jobs (12 per minute = 0.2/s), then refill to the limit.
	for _, j := range h.lease(t, 12, time.Minute, "q") {
		_, err := h.e.Complete(h.ctx, j.ID, spool.CompleteRequest{Token: j.Lease.Token})
		require.NoError(t, err)
	}
	h.enqueue(t, "q", reqs[:12]...)
	h.clock.Advance(time.Second)
	// 5 jobs over the limit at 0.2 jobs/s: 25 s.
	_, err = h.e.Enqueue(h.ctx, "q", reqs[:5])
	require.ErrorAs(t, err, &qf)
	require.Equal(t, "q", qf.Queue)
	require.Equal(t, int64(20), qf.Depth)
	require.Equal(t, 25, qf.RetryAfter)
	q, err := h.e.Queue(h.ctx, "q")
	require.NoError(t, err)
	require.Equal(t, int64(20), q.Depth, "a refused enqueue stores nothing")
}

func TestPurgeAfterRetention(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	_, err := h.e.PatchQueue(h.ctx, "q", spool.QueueConfig{Retention: dur(time.Hour)})
	require.NoError(t, err)
	j := h.enqueue(t, "q", spool.EnqueueRequest{Type: "t", IdempotencyKey: "k1"})[0]
	l := h.lease(t, 1, time.Minute, "q")
	_, err = h.e.Complete(h.ctx, j.ID, spool.CompleteRequest{Token: l[0].Lease.Token, Result: json.RawMessage(`{"ok":true}`)})
	require.NoError(t, err)

	// Within retention the key still returns the original job.
	h.clock.Advance(59 * time.Minute)
	h.maintain(t)
	res, err := h.e.Enqueue(h.ctx, "q", []spool.EnqueueRequest{{Type: "t", IdempotencyKey: "k1"}})
	require.NoError(t, err)
	require.True(t, res[0].Existing)
	require.Equal(t, j.ID, res[0].Job.ID)
	require.JSONEq(t, `{"ok":true}`, string(h.get(t, j.ID).Result))

	h.clock.Advance(2 * time.Minute)
	h.maintain(t)
	_, err = h.e.Get(h.ctx, j.ID, 0)
	require.ErrorIs(t, err, spool.ErrNotFound)
	res, err = h.e.Enqueue(h.ctx, "q", []spool.EnqueueRequest{{Type: "t", IdempotencyKey: "k1"}})
	require.NoError(t, err)
	require.False(t, res[0].Existing, "the key is free once its job is purged")
}

func TestPausedQueueHandsOutNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})
	_, err := h.e.PatchQueue(h.ctx, "q", spool.QueueConfig{Paused: ptr(true)})
	require.NoError(t, err)
	require.Empty(t, h.lease(t, 1, time.Minute, "q"))
	_, err = h.e.PatchQueue(h.ctx, "q", spool.QueueConfig{Paused: ptr(false)})
	require.NoError(t, err)
	require.Len(t, h.lease(t, 1, time.Minute, "q"), 1)
}

func TestLongPollLeaseIsWokenByEnqueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	got := make(chan []*spool.Job, 1)
	errc := make(chan error, 1)
	go func() {
		jobs, err := h.e.Lease(h.ctx, spool.LeaseRequest{Queues: []string{"a", "b"}, Max: 1, Wait: dur(time.Minute)})
		errc <- err
		got <- jobs
	}()
	// Enqueue until the waiter has it: the first enqueue may land before
	// the waiter looks, which is fine too.
	h.enqueue(t, "b", spool.EnqueueRequest{Type: "wake"})
	require.NoError(t, <-errc)
	jobs := <-got
	require.Len(t, jobs, 1)
	require.Equal(t, "wake", jobs[0].Type)
}

func TestStopEndsLongPolls(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	done := make(chan []*spool.Job)
	go func() {
		jobs, _ := h.e.Lease(h.ctx, spool.LeaseRequest{Queues: []string{"a"}, Wait: dur(time.Minute)})
		done <- jobs
	}()
	h.e.Stop()
	require.Empty(t, <-done)
}

func TestAckBatchEachStandsAlone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"}, spool.EnqueueRequest{Type: "t"}, spool.EnqueueRequest{Type: "t"})
	l := h.lease(t, 3, time.Minute, "q")
	res, err := h.e.Ack(h.ctx, []spool.Ack{
		{ID: l[0].ID, Token: l[0].Lease.Token, Outcome: spool.OutcomeComplete, Result: json.RawMessage(`1`)},
		{ID: l[1].ID, Token: "stale", Outcome: spool.OutcomeComplete},
		{ID: l[2].ID, Token: l[2].Lease.Token, Outcome: spool.OutcomeFail, Error: "nope", Final: true},
	})
	require.NoError(t, err)
	require.Equal(t, spool.StateSucceeded, res[0].State)
	require.Nil(t, res[0].Error)
	require.Equal(t, spool.CodeLeaseLost, res[1].Error.Code)
	require.Equal(t, spool.StateDead, res[2].State)
	require.Equal(t, spool.StateActive, h.get(t, l[1].ID).State)
}

func TestEnqueueIntoFullQueueIsAllOrNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	_, err := h.e.PatchQueue(h.ctx, "q", spool.QueueConfig{MaxDepth: ptr(int64(3))})
	require.NoError(t, err)
	h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"}, spool.EnqueueRequest{Type: "t"})
	_, err = h.e.Enqueue(h.ctx, "q", []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}})
	require.True(t, errors.Is(err, spool.ErrQueueFull))
	q, err := h.e.Queue(h.ctx, "q")
	require.NoError(t, err)
	require.Equal(t, int64(2), q.Depth)
	require.Equal(t, int64(3), *q.Config.MaxDepth)
}

func ptr[T any](v T) *T { return &v }

// When the store cannot be read, a batch of acks fails as a whole (the
// server answers 503) instead of answering per-ack errors, so the worker
// sends it again rather than dropping its outcomes.
func TestAckBatchFailsWholeWhenStoreIsDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})
	l := h.lease(t, 1, time.Minute, "q")
	require.NoError(t, h.e.Store().Close())
	res, err := h.e.Ack(h.ctx, []spool.Ack{{ID: l[0].ID, Token: l[0].Lease.Token, Outcome: spool.OutcomeComplete}})
	require.ErrorIs(t, err, spool.ErrUnavailable)
	require.Nil(t, res)
}

// goneCtx reports itself cancelled once gone is set.
type goneCtx struct {
	context.Context
	gone *atomic.Bool
}

func (c goneCtx) Err() error {
	if c.gone.Load() {
		return context.Canceled
	}
	return nil
}

// A lease whose caller leaves while the store claims the jobs (a worker
// shutting down cancels its long-poll) hands them back at once, attempt
// not counted, instead of leaving them active until the lease expires.
func TestLeaseForACallerThatLeftHandsJobsBack(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	var gone atomic.Bool
	e, err := engine.New(engine.Config{Store: st, Clock: engine.NewManualClock(t0),
		NewToken: func() string { gone.Store(true); return "tok" }})
	require.NoError(t, err)
	t.Cleanup(func() {
		e.Stop()
		require.NoError(t, st.Close())
	})
	ctx := context.Background()
	res, err := e.Enqueue(ctx, "q", []spool.EnqueueRequest{{Type: "t"}})
	require.NoError(t, err)

	jobs, err := e.Lease(goneCtx{Context: ctx, gone: &gone}, spool.LeaseRequest{Queues: []string{"q"}, Wait: dur(time.Minute)})
	require.NoError(t, err)
	require.Empty(t, jobs, "the caller is gone: nothing is handed to it")
	require.True(t, gone.Load(), "the store did lease the job")
	j, err := e.Get(ctx, res[0].Job.ID, 0)
	require.NoError(t, err)
	require.Equal(t, spool.StateReady, j.State, "handed back")
	require.Equal(t, 0, j.Attempt, "the attempt is not counted")
}
