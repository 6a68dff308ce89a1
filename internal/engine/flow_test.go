package engine_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func (h *harness) patch(t *testing.T, q string, c spool.QueueConfig) *spool.QueueInfo {
	t.Helper()
	info, err := h.e.PatchQueue(h.ctx, q, c)
	require.NoError(t, err)
	return info
}

// longPoll starts a lease request on q waiting up to a minute.
func (h *harness) longPoll(q string) <-chan []*spool.Job {
	got := make(chan []*spool.Job, 1)
	go func() {
		jobs, _ := h.e.Lease(h.ctx, spool.LeaseRequest{Queues: []string{q}, Max: 10, Wait: dur(time.Minute)})
		got <- jobs
	}()
	return got
}

func receive(t *testing.T, ch <-chan []*spool.Job) []*spool.Job {
	t.Helper()
	select {
	case jobs := <-ch:
		return jobs
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll was not woken")
		return nil
	}
}

func TestQueueFlowSettings(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	info := h.patch(t, "q", spool.QueueConfig{})
	require.Equal(t, 0, *info.Config.Concurrency)
	require.Equal(t, 0.0, *info.Config.Rate)
	require.Equal(t, 0, *info.Config.Burst)

	info = h.patch(t, "q", spool.QueueConfig{Concurrency: ptr(3), Rate: ptr(2.5)})
	require.Equal(t, 3, *info.Config.Concurrency)
	require.Equal(t, 2.5, *info.Config.Rate)
	require.Equal(t, 3, *info.Config.Burst, "burst defaults to the rate rounded up")
	info = h.patch(t, "q", spool.QueueConfig{Burst: ptr(10)})
	require.Equal(t, 10, *info.Config.Burst)
	require.Equal(t, 3, *info.Config.Concurrency, "fields absent from a patch stay")

	for _, bad := range []spool.QueueConfig{
		{Concurrency: ptr(-1)}, {Rate: ptr(-0.5)}, {Burst: ptr(-2)}, {Concurrency: ptr(spool.MaxConcurrency + 1)},
	} {
		_, err := h.e.PatchQueue(h.ctx, "q", bad)
		require.ErrorIs(t, err, spool.ErrInvalid)
	}
	info, err := h.e.Queue(h.ctx, "q")
	require.NoError(t, err)
	require.Equal(t, 3, *info.Config.Concurrency, "a refused patch changes nothing")

	info = h.patch(t, "q", spool.QueueConfig{Concurrency: ptr(0), Rate: ptr(0.0), Burst: ptr(0)})
	require.Equal(t, 0, *info.Config.Concurrency, "0 removes the cap")
	require.Equal(t, 0.0, *info.Config.Rate)
	require.Equal(t, 0, *info.Config.Burst)
}

func TestPausedQueueStillAdmitsJobs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.patch(t, "q", spool.QueueConfig{Paused: ptr(true)})
	h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"}, spool.EnqueueRequest{Type: "t"})
	require.Empty(t, h.lease(t, 10, time.Minute, "q"))
	got := h.longPoll("q")
	h.patch(t, "q", spool.QueueConfig{Paused: ptr(false)})
	require.Len(t, receive(t, got), 2, "resuming wakes the long-poll")
}

func TestRateLimitFollowsTheClock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.patch(t, "q", spool.QueueConfig{Rate: ptr(2.0), Burst: ptr(2)})
	for range 10 {
		h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"})
	}
	require.Len(t, h.lease(t, 10, time.Minute, "q"), 2, "the burst")
	require.Empty(t, h.lease(t, 10, time.Minute, "q"))
	h.clock.Advance(500 * time.Millisecond)
	require.Len(t, h.lease(t, 10, time.Minute, "q"), 1)
	h.clock.Advance(499 * time.Millisecond)
	require.Empty(t, h.lease(t, 10, time.Minute, "q"))
	h.clock.Advance(time.Hour)
	require.Len(t, h.lease(t, 10, time.Minute, "q"), 2, "never more than the burst")
}

func TestRateLimitedLongPollWakesAtRefill(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.patch(t, "q", spool.QueueConfig{Rate: ptr(20.0), Burst: ptr(1)})
	h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"}, spool.EnqueueRequest{Type: "t"})
	require.Len(t, h.lease(t, 10, time.Minute, "q"), 1)
	got := h.longPoll("q")
	// The long-poll looks again when the next token is due (50ms by the
	// clock); the clock gets there meanwhile.
	h.clock.Advance(50 * time.Millisecond)
	require.Len(t, receive(t, got), 1)
}

func TestConcurrencyLimitedLongPollWakesWhenAJobFinishes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.patch(t, "q", spool.QueueConfig{Concurrency: ptr(1)})
	h.enqueue(t, "q", spool.EnqueueRequest{Type: "t"}, spool.EnqueueRequest{Type: "t"})
	first := h.lease(t, 10, time.Minute, "q")
	require.Len(t, first, 1)
	require.Empty(t, h.lease(t, 10, time.Minute, "q"))
	got := h.longPoll("q")
	_, err := h.e.Complete(h.ctx, first[0].ID, spool.CompleteRequest{Token: first[0].Lease.Token})
	require.NoError(t, err)
	require.Len(t, receive(t, got), 1)
}

func TestOrderingKeyJobsRunOneAfterAnother(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	jobs := h.enqueue(t, "q",
		spool.EnqueueRequest{Type: "a1", OrderingKey: "a"},
		spool.EnqueueRequest{Type: "a2", OrderingKey: "a"},
		spool.EnqueueRequest{Type: "b1", OrderingKey: "b"},
		spool.EnqueueRequest{Type: "a3", OrderingKey: "a"})
	require.Equal(t, "a", jobs[0].OrderingKey)
	got := h.lease(t, 10, time.Minute, "q")
	require.Len(t, got, 2)
	require.Equal(t, []string{"a1", "b1"}, []string{got[0].Type, got[1].Type})

	// A failed attempt waits for its retry and keeps its key.
	_, err := h.e.Fail(h.ctx, got[0].ID, spool.FailRequest{Token: got[0].Lease.Token, Error: "boom", RetryIn: dur(time.Minute)})
	require.NoError(t, err)
	require.Empty(t, h.lease(t, 10, time.Minute, "q"))
	h.clock.Advance(time.Minute)
	h.maintain(t)
	again := h.lease(t, 10, time.Minute, "q")
	require.Len(t, again, 1)
	require.Equal(t, "a1", again[0].Type)
	require.Equal(t, 2, again[0].Attempt)

	// Finishing it wakes a long-poll with the key's next job.
	wait := h.longPoll("q")
	_, err = h.e.Complete(h.ctx, again[0].ID, spool.CompleteRequest{Token: again[0].Lease.Token})
	require.NoError(t, err)
	next := receive(t, wait)
	require.Len(t, next, 1)
	require.Equal(t, "a2", next[0].Type)
}
