package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
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
