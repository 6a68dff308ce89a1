package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/postgres"
)

// TestEngineOnTwoNodes runs the real engine on two stores sharing one
// schema, as two `spool serve` nodes would: what one node writes the other
// serves, and maintenance run by both at once does each thing once.
func TestEngineOnTwoNodes(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	clock := engine.NewManualClock(time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC))
	var nodes []*engine.Engine
	for range 2 {
		e, err := engine.New(engine.Config{Store: open(t, schema), Clock: clock, Rand: func() float64 { return 1 }})
		require.NoError(t, err)
		t.Cleanup(e.Stop)
		nodes = append(nodes, e)
	}
	a, b := nodes[0], nodes[1]
	ctx := t.Context()
	d := func(x time.Duration) *spool.Duration { v := spool.Duration(x); return &v }

	// Node A enqueues; a repeated idempotency key returns the first job.
	res, err := a.Enqueue(ctx, "mail", []spool.EnqueueRequest{
		{Type: "send", Payload: json.RawMessage(`{"n":1}`), IdempotencyKey: "k1"},
		{Type: "send", Payload: json.RawMessage(`{"n":2}`), MaxAttempts: 2},
		{Type: "send", Payload: json.RawMessage(`{"n":3}`), Delay: d(10 * time.Second)},
	})
	require.NoError(t, err)
	again, err := b.Enqueue(ctx, "mail", []spool.EnqueueRequest{{Type: "send", IdempotencyKey: "k1"}})
	require.NoError(t, err)
	require.True(t, again[0].Existing)
	require.Equal(t, res[0].Job.ID, again[0].Job.ID)

	// Node B leases what A enqueued, completes one and fails the other.
	jobs, err := b.Lease(ctx, spool.LeaseRequest{Queues: []string{"mail"}, Max: 10, Lease: d(30 * time.Second), Worker: "w"})
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	_, err = b.Complete(ctx, jobs[0].ID, spool.CompleteRequest{Token: jobs[0].Lease.Token, Result: json.RawMessage(`{"ok":true}`)})
	require.NoError(t, err)
	failed, err := a.Fail(ctx, jobs[1].ID, spool.FailRequest{Token: jobs[1].Lease.Token, Error: "smtp down", RetryIn: d(5 * time.Second)})
	require.NoError(t, err)
	require.Equal(t, spool.StateScheduled, failed.State)
	_, err = a.Complete(ctx, jobs[0].ID, spool.CompleteRequest{Token: jobs[0].Lease.Token})
	require.ErrorIs(t, err, spool.ErrLeaseLost, "a finished job's token is stale on every node")

	// Both nodes maintain at once: due jobs are promoted once.
	clock.Advance(10 * time.Second)
	maintainBoth(t, nodes)
	jobs, err = a.Lease(ctx, spool.LeaseRequest{Queues: []string{"mail"}, Max: 10, Lease: d(30 * time.Second), Worker: "w"})
	require.NoError(t, err)
	require.Len(t, jobs, 2)

	// The worker vanishes: both nodes expire the leases, each lease once.
	clock.Advance(time.Minute)
	maintainBoth(t, nodes)
	for _, j := range jobs {
		g, err := b.Get(ctx, j.ID, 0)
		require.NoError(t, err)
		require.Len(t, g.Errors, g.Attempt, "job %s: one error per attempt, the expiry counted once", j.ID)
	}

	// A small max_depth set on one node refuses enqueues on the other.
	_, err = a.PatchQueue(ctx, "mail", spool.QueueConfig{MaxDepth: ptr(int64(2))})
	require.NoError(t, err)
	clock.Advance(time.Minute) // past the config cache
	info, err := b.Queue(ctx, "mail")
	require.NoError(t, err)
	// n=1 succeeded; n=2 spent its two attempts (dead); n=3 waits for its
	// retry (scheduled).
	require.EqualValues(t, 1, info.Depth)
	_, err = b.Enqueue(ctx, "mail", []spool.EnqueueRequest{{Type: "send"}, {Type: "send"}})
	var qf *spool.QueueFullError
	require.True(t, errors.As(err, &qf), "want queue full, got %v", err)
	require.EqualValues(t, 1, qf.Depth)
	_, err = b.Enqueue(ctx, "mail", []spool.EnqueueRequest{{Type: "send"}})
	require.NoError(t, err, "one more fits")
}

func maintainBoth(t *testing.T, nodes []*engine.Engine) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, e := range nodes {
		wg.Go(func() { errs[i] = e.Maintain(context.Background()) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

// watched is a Store whose Lease calls are reported, so that a test knows
// a long-poll has looked and is waiting. Embedding keeps Listen and
// NextDue: the engine sees a store.Notifier.
type watched struct {
	*postgres.Store
	looked chan int
}

func (w *watched) Lease(ctx context.Context, p store.LeaseParams) ([]*store.Record, error) {
	recs, err := w.Store.Lease(ctx, p)
	select {
	case w.looked <- len(recs):
	default:
	}
	return recs, err
}

// startedNode returns a started engine (real clock) on a new store on
// schema: a node of a cluster.
func startedNode(t *testing.T, schema string) (*engine.Engine, *watched) {
	t.Helper()
	st := &watched{Store: open(t, schema), looked: make(chan int, 1)}
	e, err := engine.New(engine.Config{Store: st, RecheckInterval: time.Hour})
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(e.Stop)
	return e, st
}

// longPoll starts a lease request on e that waits up to 30s, waits until
// it has looked at the store and found nothing, and returns the channel of
// its answer.
func longPoll(t *testing.T, e *engine.Engine, st *watched, queue string) <-chan []*spool.Job {
	t.Helper()
	select {
	case <-st.looked: // a stale report
	default:
	}
	out := make(chan []*spool.Job, 1)
	wait := spool.Duration(30 * time.Second)
	go func() {
		jobs, err := e.Lease(context.Background(), spool.LeaseRequest{Queues: []string{queue}, Max: 1, Wait: &wait, Worker: "b"})
		if err != nil {
			t.Errorf("long-poll: %v", err)
		}
		out <- jobs
	}()
	select {
	case n := <-st.looked:
		require.Zero(t, n, "nothing is ready before the write")
	case <-time.After(20 * time.Second):
		t.Fatal("the long-poll did not look at the store")
	}
	return out
}

// woken waits for a long-poll's answer: it must come well before its 30s
// wait ends, which only a wake-up from the other node can do.
func woken(t *testing.T, ch <-chan []*spool.Job, since time.Time) ([]*spool.Job, time.Duration) {
	t.Helper()
	select {
	case jobs := <-ch:
		return jobs, time.Since(since)
	case <-time.After(25 * time.Second):
		t.Fatal("the long-poll on the other node was not woken")
		return nil, 0
	}
}

// TestCrossNodeWakeUps: a long-poll on node B answers within milliseconds
// of node A making a job ready (enqueue, retry after a failure, release,
// promotion of a scheduled job, retry of a dead job), and a status wait on
// B of A finishing the job. The latencies are logged; the test only
// requires them well below the 30s wait.
func TestCrossNodeWakeUps(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	a, _ := startedNode(t, schema)
	b, bst := startedNode(t, schema)
	ctx := t.Context()
	d := func(x time.Duration) *spool.Duration { v := spool.Duration(x); return &v }
	var report []string
	note := func(what string, lat time.Duration) {
		report = append(report, fmt.Sprintf("%s %s", what, lat.Round(10*time.Microsecond)))
	}
	// b's long-poll is waiting when a writes; the latency is from the
	// write's return (its commit) to b's answer.
	wake := func(what string, write func() string) *spool.Job {
		t.Helper()
		ch := longPoll(t, b, bst, "q")
		id := write()
		jobs, lat := woken(t, ch, time.Now())
		require.Len(t, jobs, 1, what)
		require.Equal(t, id, jobs[0].ID, what)
		note(what, lat)
		return jobs[0]
	}

	var id string
	j := wake("enqueue", func() string {
		res, err := a.Enqueue(ctx, "q", []spool.EnqueueRequest{{Type: "t", MaxAttempts: 2}})
		require.NoError(t, err)
		id = res[0].Job.ID
		return id
	})
	j = wake("fail, retry now", func() string {
		_, err := a.Fail(ctx, id, spool.FailRequest{Token: j.Lease.Token, Error: "x", RetryIn: d(0)})
		require.NoError(t, err)
		return id
	})
	j = wake("release", func() string {
		_, err := a.Release(ctx, id, spool.ReleaseRequest{Token: j.Lease.Token})
		require.NoError(t, err)
		return id
	})
	// Status wait on b, finished on a.
	got := make(chan *spool.Job, 1)
	go func() {
		g, err := b.Get(ctx, id, 30*time.Second)
		if err != nil {
			t.Errorf("status wait: %v", err)
		}
		got <- g
	}()
	_, err := a.Fail(ctx, id, spool.FailRequest{Token: j.Lease.Token, Error: "final", Final: true})
	require.NoError(t, err)
	start := time.Now()
	select {
	case g := <-got:
		require.Equal(t, spool.StateDead, g.State)
		note("status wait, finished", time.Since(start))
	case <-time.After(25 * time.Second):
		t.Fatal("the status wait on b was not woken")
	}
	wake("retry dead job", func() string {
		_, err := a.Retry(ctx, id)
		require.NoError(t, err)
		return id
	})
	// A scheduled job: a promotes it when due (its NextDue), b hears it;
	// measured from the job's run_at.
	const delay = 300 * time.Millisecond
	ch := longPoll(t, b, bst, "q")
	res, err := a.Enqueue(ctx, "q", []spool.EnqueueRequest{{Type: "t", Delay: d(delay)}})
	require.NoError(t, err)
	jobs, lat := woken(t, ch, res[0].Job.RunAt)
	require.Len(t, jobs, 1)
	require.Equal(t, res[0].Job.ID, jobs[0].ID)
	note("scheduled, after due", lat)
	t.Logf("cross-node wake-up latencies (a writes, b answers): %s", strings.Join(report, "; "))
}

// TestCrossNodeWakeUpAfterListenerLoss: the listening connection of node
// B is cut; a job enqueued on A meanwhile still wakes B's long-poll, by
// the resync of B's reconnected listener if the notification was lost.
func TestCrossNodeWakeUpAfterListenerLoss(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	a, err := engine.New(engine.Config{Store: open(t, schema), RecheckInterval: time.Hour})
	require.NoError(t, err)
	b, bst := startedNode(t, schema)
	// b listens once its listener has issued LISTEN.
	require.Eventually(t, func() bool { return listenerCount(t, schema) == 1 }, 20*time.Second, 5*time.Millisecond)

	ch := longPoll(t, b, bst, "q")
	terminateListener(t, schema)
	res, err := a.Enqueue(t.Context(), "q", []spool.EnqueueRequest{{Type: "t"}})
	require.NoError(t, err)
	jobs, lat := woken(t, ch, time.Now())
	require.Len(t, jobs, 1)
	require.Equal(t, res[0].Job.ID, jobs[0].ID)
	t.Logf("woken %s after the enqueue, across a listener reconnection", lat.Round(time.Millisecond))
}

func listenerCount(t *testing.T, schema string) int {
	var n int
	err := admin.get(t).QueryRow(context.Background(), `
		SELECT count(*) FROM pg_stat_activity
		WHERE application_name = $1 AND query = 'LISTEN "' || $2 || '"'`,
		postgres.ListenApplicationName, postgres.ChannelName(schema)).Scan(&n)
	require.NoError(t, err)
	return n
}

// TestTelemetryOnTwoNodes: two nodes that each counted part of a queue's
// traffic report the same, merged figures once both have flushed, and
// refuse a full queue with the same Retry-After.
func TestTelemetryOnTwoNodes(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	clock := engine.NewManualClock(time.Date(2031, time.March, 4, 5, 6, 0, 0, time.UTC))
	var nodes []*engine.Engine
	for range 2 {
		e, err := engine.New(engine.Config{Store: open(t, schema), Clock: clock, Rand: func() float64 { return 1 }})
		require.NoError(t, err)
		t.Cleanup(e.Stop)
		nodes = append(nodes, e)
	}
	a, b := nodes[0], nodes[1]
	ctx := t.Context()
	d := func(x time.Duration) *spool.Duration { v := spool.Duration(x); return &v }

	_, err := a.PatchQueue(ctx, "tel", spool.QueueConfig{MaxDepth: ptr(int64(4)), TargetWait: d(time.Second)})
	require.NoError(t, err)
	_, err = a.Enqueue(ctx, "tel", []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}})
	require.NoError(t, err)
	_, err = b.Enqueue(ctx, "tel", []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}})
	require.NoError(t, err)
	clock.Advance(time.Second)
	jobs, err := b.Lease(ctx, spool.LeaseRequest{Queues: []string{"tel"}, Max: 3, Lease: d(time.Minute), Worker: "w"})
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	clock.Advance(2 * time.Second)
	for i, j := range jobs {
		node := nodes[i%2]
		_, err := node.Complete(ctx, j.ID, spool.CompleteRequest{Token: j.Lease.Token})
		require.NoError(t, err)
	}
	for _, n := range nodes {
		require.NoError(t, n.FlushTelemetry(ctx))
	}
	sa, err := a.QueueStats(ctx, "tel", time.Hour)
	require.NoError(t, err)
	sb, err := b.QueueStats(ctx, "tel", time.Hour)
	require.NoError(t, err)
	require.Equal(t, sa, sb, "both nodes report the same figures")
	m := sa.Windows[0]
	require.EqualValues(t, 4, m.Arrivals)
	require.EqualValues(t, 3, m.Finished[spool.StateSucceeded])
	require.EqualValues(t, 3, m.Wait.Count)
	require.InDelta(t, 1.0, m.Wait.Mean, 1e-6)
	require.InDelta(t, 2.0, m.Run.Mean, 1e-6)
	require.Equal(t, 1, *sa.Sizing.WorkersNeeded)

	qa, err := a.Queue(ctx, "tel")
	require.NoError(t, err)
	qb, err := b.Queue(ctx, "tel")
	require.NoError(t, err)
	require.InDelta(t, 4/60.0, qa.EnqueueRate, 1e-12)
	require.Equal(t, qa.CompleteRate, qb.CompleteRate)

	// Full on both nodes: 3 over the limit at 3/60 finished per second.
	_, err = a.Enqueue(ctx, "tel", []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}, {Type: "t"}})
	require.NoError(t, err)
	var fa, fb *spool.QueueFullError
	_, err = a.Enqueue(ctx, "tel", []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}, {Type: "t"}})
	require.ErrorAs(t, err, &fa)
	_, err = b.Enqueue(ctx, "tel", []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}, {Type: "t"}})
	require.ErrorAs(t, err, &fb)
	require.Equal(t, 60, fa.RetryAfter, "(4+3-4) jobs at 0.05/s")
	require.Equal(t, fa.RetryAfter, fb.RetryAfter)
}
