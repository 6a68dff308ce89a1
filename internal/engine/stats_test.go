package engine_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store"
)

// TestQueueStatsHandComputed drives a queue with a manual clock and checks
// every figure against values computed by hand.
func TestQueueStatsHandComputed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	_, err := h.e.PatchQueue(h.ctx, "s", spool.QueueConfig{TargetWait: dur(time.Second)})
	require.NoError(t, err)

	// t0: six jobs arrive. The rates show this node's counts before any
	// flush: 6 per minute.
	reqs := make([]spool.EnqueueRequest, 6)
	for i := range reqs {
		reqs[i] = spool.EnqueueRequest{Type: "t"}
	}
	h.enqueue(t, "s", reqs...)
	q, err := h.e.Queue(h.ctx, "s")
	require.NoError(t, err)
	require.InDelta(t, 0.1, q.EnqueueRate, 1e-12)

	// t0+2s: three start (each waited 2s); a sample: 6 not terminal,
	// 3 ready, 3 active.
	h.clock.Advance(2 * time.Second)
	jobs := h.lease(t, 3, time.Minute, "s")
	require.Len(t, jobs, 3)
	require.NoError(t, h.e.FlushTelemetry(h.ctx))

	// t0+6s: two succeed and one fails for good (each ran 4s); a sample:
	// 3 not terminal, 3 ready, 0 active.
	h.clock.Advance(4 * time.Second)
	for _, j := range jobs[:2] {
		_, err := h.e.Complete(h.ctx, j.ID, spool.CompleteRequest{Token: j.Lease.Token})
		require.NoError(t, err)
	}
	_, err = h.e.Fail(h.ctx, jobs[2].ID, spool.FailRequest{Token: jobs[2].Lease.Token, Error: "no", Final: true})
	require.NoError(t, err)
	require.NoError(t, h.e.FlushTelemetry(h.ctx))

	h.clock.Advance(9 * time.Second) // t0+15s, the second bucket
	st, err := h.e.QueueStats(h.ctx, "s", time.Hour)
	require.NoError(t, err)
	require.Equal(t, "s", st.Queue)
	require.EqualValues(t, 3, st.Now.Depth)
	require.EqualValues(t, 0, st.Now.Busy)
	require.Len(t, st.Windows, 3)

	m := st.Windows[0]
	require.Equal(t, spool.Duration(time.Minute), m.Window)
	require.EqualValues(t, 6, m.Arrivals)
	require.InDelta(t, 6/60.0, m.ArrivalRate, 1e-12)
	require.Equal(t, map[spool.State]int64{spool.StateSucceeded: 2, spool.StateDead: 1, spool.StateCancelled: 0}, m.Finished)
	require.InDelta(t, 3/60.0, m.Throughput, 1e-12)
	require.InDelta(t, 2/60.0, m.ThroughputByOutcome[spool.StateSucceeded], 1e-12)
	require.InDelta(t, 1/60.0, m.FailureRate, 1e-12)
	// Three waits of 2s, all in the (1s, 2.5s] bucket: p50 at rank 1.5 of
	// 3 is 1 + 1.5·1.5/3, p95 at rank 2.85 is 1 + 1.5·2.85/3.
	require.EqualValues(t, 3, m.Wait.Count)
	require.InDelta(t, 2.0, m.Wait.Mean, 1e-9)
	require.InDelta(t, 1.75, m.Wait.P50, 1e-9)
	require.InDelta(t, 2.425, m.Wait.P95, 1e-9)
	require.InDelta(t, 2.485, m.Wait.P99, 1e-9)
	// Three runs of 4s in (2.5s, 5s].
	require.EqualValues(t, 3, m.Run.Count)
	require.InDelta(t, 4.0, m.Run.Mean, 1e-9)
	require.InDelta(t, 3.75, m.Run.P50, 1e-9)
	// Two samples: depth (6+3)/2, ready (3+3)/2, busy (3+0)/2.
	require.InDelta(t, 4.5, m.AvgDepth, 1e-12)
	require.InDelta(t, 3.0, m.AvgReady, 1e-12)
	require.InDelta(t, 1.5, m.AvgBusy, 1e-12)
	// Little: L = 3 + 1.5; λ = 3 starts/60s; W = 2s + 4s.
	require.InDelta(t, 4.5, m.LittlesLaw.L, 1e-12)
	require.InDelta(t, 0.05, m.LittlesLaw.Lambda, 1e-12)
	require.InDelta(t, 6.0, m.LittlesLaw.W, 1e-9)
	require.InDelta(t, 0.3, m.LittlesLaw.LambdaW, 1e-9)

	// Sizing over 5 minutes: λ = 3/300, S = 4s, a = 0.04; one worker
	// waits ρ/(μ−λ) = 0.04/(0.25−0.01) = 1/6 s on average, within 1s.
	sz := st.Sizing
	require.InDelta(t, 0.01, sz.ArrivalRate, 1e-12)
	require.InDelta(t, 4.0, sz.ServiceTime, 1e-9)
	require.InDelta(t, 0.04, sz.OfferedLoad, 1e-9)
	require.Equal(t, 1, *sz.MinWorkers)
	require.Equal(t, 1, *sz.WorkersNeeded)
	require.InDelta(t, 3/300.0-6/300.0, sz.NetRate, 1e-12)
	require.Nil(t, sz.DrainTime, "a backlog that grows never drains")

	// History over 1 hour: 1-minute points, the last one holding all of it.
	require.NotNil(t, st.History)
	require.Len(t, st.History.Points, 60)
	last := st.History.Points[59]
	require.True(t, last.At.Equal(t0), "%v", last.At)
	require.EqualValues(t, 6, last.Arrivals)
	require.EqualValues(t, 2, last.Succeeded)
	require.EqualValues(t, 1, last.Dead)
	require.InDelta(t, 2.0, last.WaitMean, 1e-9)

	// The three left now start and finish within 1s: the backlog drains.
	h.clock.Advance(time.Second)
	jobs = h.lease(t, 3, time.Minute, "s")
	require.Len(t, jobs, 3)
	for _, j := range jobs {
		_, err := h.e.Complete(h.ctx, j.ID, spool.CompleteRequest{Token: j.Lease.Token})
		require.NoError(t, err)
	}
	st, err = h.e.QueueStats(h.ctx, "s", 0)
	require.NoError(t, err)
	require.Nil(t, st.History)
	require.Equal(t, 0.0, *st.Sizing.DrainTime, "an empty queue has nothing to drain")

	// 75s later the 1-minute window has moved past it all; 5 minutes
	// still hold it.
	h.clock.Advance(59 * time.Second) // t0+75s
	st, err = h.e.QueueStats(h.ctx, "s", 0)
	require.NoError(t, err)
	require.Zero(t, st.Windows[0].Arrivals)
	require.EqualValues(t, 6, st.Windows[1].Arrivals)
	require.EqualValues(t, 6, st.Windows[1].Wait.Count)

	// Three hours later the 10-second buckets are purged; the 5-minute
	// ones make the 24-hour history.
	h.clock.Advance(3 * time.Hour)
	require.NoError(t, h.e.FlushTelemetry(h.ctx))
	got, err := h.e.Store().Stats(h.ctx, store.StatsParams{Queue: "s", Width: engine.StatsWidth, From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	require.NoError(t, err)
	require.Empty(t, got)
	st, err = h.e.QueueStats(h.ctx, "s", 24*time.Hour)
	require.NoError(t, err)
	require.Len(t, st.History.Points, 288)
	var arrivals int64
	for _, p := range st.History.Points {
		arrivals += p.Arrivals
	}
	require.EqualValues(t, 6, arrivals)

	_, err = h.e.QueueStats(h.ctx, "nope", 0)
	require.ErrorIs(t, err, spool.ErrNotFound)
	_, err = h.e.QueueStats(h.ctx, "s", 49*time.Hour)
	require.ErrorIs(t, err, spool.ErrInvalid)
}

// A node that stops stores what it counted, once.
func TestTelemetrySurvivesRestartOfCounts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.enqueue(t, "r", spool.EnqueueRequest{Type: "t"}, spool.EnqueueRequest{Type: "t"})
	// Stopping the engine flushes what it counted.
	require.NoError(t, h.e.Start(h.ctx))
	h.e.Stop()
	got, err := h.e.Store().Stats(h.ctx, store.StatsParams{Queue: "r", Width: engine.StatsWidth, From: t0, To: t0.Add(time.Minute)})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.EqualValues(t, 2, got[0].Arrivals)
	require.EqualValues(t, 1, got[0].Samples)
	require.EqualValues(t, 2, got[0].ReadySum)
	// And they are counted once: in the store, no longer pending.
	st, err := h.e.QueueStats(h.ctx, "r", 0)
	require.NoError(t, err)
	require.EqualValues(t, 2, st.Windows[0].Arrivals)
}

// Retry-After reads the queue's throughput at most once a second per node:
// refusals in between reuse it, so a storm of refused enqueues adds no
// reads to a store that is behind.
func TestRetryAfterReusesThroughputForASecond(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	_, err := h.e.PatchQueue(h.ctx, "f", spool.QueueConfig{MaxDepth: ptr(int64(2))})
	require.NoError(t, err)
	h.enqueue(t, "f", spool.EnqueueRequest{Type: "t"}, spool.EnqueueRequest{Type: "t"})
	three := []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}, {Type: "t"}}
	var qf *spool.QueueFullError
	_, err = h.e.Enqueue(h.ctx, "f", three)
	require.ErrorAs(t, err, &qf)
	require.Equal(t, 60, qf.RetryAfter, "nothing finished yet: the window")

	j := h.lease(t, 1, time.Minute, "f")[0]
	_, err = h.e.Complete(h.ctx, j.ID, spool.CompleteRequest{Token: j.Lease.Token})
	require.NoError(t, err)
	h.enqueue(t, "f", spool.EnqueueRequest{Type: "t"})
	_, err = h.e.Enqueue(h.ctx, "f", three)
	require.ErrorAs(t, err, &qf)
	require.Equal(t, 60, qf.RetryAfter, "within the second: the throughput read before")

	h.clock.Advance(time.Second)
	_, err = h.e.Enqueue(h.ctx, "f", three)
	require.ErrorAs(t, err, &qf)
	require.Equal(t, 180, qf.RetryAfter, "3 over the limit at 1 finished per minute")
}
