package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
)

// TestSchedulesOnThreeNodes runs the scheduler of three engines on one
// schema at every second of a minute, all at once: each fire time has
// exactly one job, and a full queue is counted as missed once.
func TestSchedulesOnThreeNodes(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	t0 := time.Date(2031, time.March, 4, 5, 6, 0, 0, time.UTC)
	clock := engine.NewManualClock(t0)
	var nodes []*engine.Engine
	for range 3 {
		e, err := engine.New(engine.Config{Store: open(t, schema), Clock: clock})
		require.NoError(t, err)
		t.Cleanup(e.Stop)
		nodes = append(nodes, e)
	}
	ctx := t.Context()
	req := spool.ScheduleRequest{Cron: "@every 1s", Job: spool.ScheduleJob{Queue: "ticks", EnqueueRequest: spool.EnqueueRequest{Type: "tick"}}}
	_, _, err := nodes[0].PutSchedule(ctx, "tick", req)
	require.NoError(t, err)
	req.Cron, req.Job.Queue = "*/10 * * * * *", "tiny"
	_, _, err = nodes[1].PutSchedule(ctx, "tiny", req)
	require.NoError(t, err)
	_, err = nodes[2].PatchQueue(ctx, "tiny", spool.QueueConfig{MaxDepth: ptr(int64(3))})
	require.NoError(t, err)

	for i := 1; i <= 60; i++ {
		clock.Set(t0.Add(time.Duration(i) * time.Second))
		var wg sync.WaitGroup
		for _, e := range nodes {
			wg.Go(func() { require.NoError(t, e.RunSchedules(ctx)) })
		}
		wg.Wait()
	}
	l, err := nodes[2].ListJobs(ctx, engine.ListParams{Queue: "ticks", Limit: 1000})
	require.NoError(t, err)
	require.Len(t, l.Jobs, 60)
	keys := map[string]bool{}
	for _, j := range l.Jobs {
		require.False(t, keys[j.IdempotencyKey], "fire time %s twice", j.IdempotencyKey)
		keys[j.IdempotencyKey] = true
	}
	sc, err := nodes[1].GetSchedule(ctx, "tick")
	require.NoError(t, err)
	require.Equal(t, int64(60), sc.FiredCount)
	require.Zero(t, sc.MissedCount)

	tiny, err := nodes[0].GetSchedule(ctx, "tiny")
	require.NoError(t, err)
	require.Equal(t, int64(3), tiny.FiredCount)
	require.Equal(t, int64(3), tiny.MissedCount)
	require.Equal(t, spool.MissedQueueFull, tiny.LastMissedReason)
	require.Equal(t, t0.Add(time.Minute), *tiny.LastMissedAt)
}
