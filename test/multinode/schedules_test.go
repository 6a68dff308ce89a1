package multinode

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// TestScheduleFiresOnceAcrossNodes: two real nodes on one PostgreSQL
// schema run the scheduler of an "@every 1s" schedule; one of them is
// killed with kill -9 and started again. Every fire time has exactly one
// job, and every second of the run is accounted for: fired, or counted as
// missed.
func TestScheduleFiresOnceAcrossNodes(t *testing.T) {
	base := needPostgres(t)
	storeURL, _ := freshSchema(t, base)
	nodes := startNodes(t, 2, storeURL)
	c0, c1 := newClient(t, nodes[0]), newClient(t, nodes[1])
	ctx := context.Background()

	_, err := c0.PutSchedule(ctx, "tick", spool.ScheduleRequest{Cron: "@every 1s", Job: spool.ScheduleJob{
		Queue: "ticks", EnqueueRequest: spool.EnqueueRequest{Type: "tick"}}})
	if err != nil {
		t.Fatal(err)
	}
	fired := func(c *client.Client) int64 {
		sc, err := c.Schedule(ctx, "tick")
		if err != nil {
			t.Fatal(err)
		}
		return sc.FiredCount
	}
	eventually(t, 15*time.Second, "3 firings on two nodes", func() bool { return fired(c1) >= 3 })

	nodes[0].Kill()
	<-nodes[0].Done()
	n := fired(c1)
	eventually(t, 15*time.Second, "3 more firings with one node", func() bool { return fired(c1) >= n+3 })

	nodes[0] = startNode(t, "n0-again", "--store", storeURL)
	c0 = newClient(t, nodes[0])
	n = fired(c0)
	eventually(t, 15*time.Second, "3 more firings after the restart", func() bool { return fired(c0) >= n+3 })

	if _, err := c0.PauseSchedule(ctx, "tick"); err != nil {
		t.Fatal(err)
	}
	// A pass that read the schedule before the pause may still fire once:
	// its FireSchedule then conflicts on the revision, so nothing more is
	// stored after the pause committed. Read the counters after it.
	sc, err := c1.Schedule(ctx, "tick")
	if err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	var first, last time.Time
	for j, err := range c1.Jobs(ctx, "ticks", client.ListJobsOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[j.IdempotencyKey] {
			t.Fatalf("two jobs for fire time %s", j.IdempotencyKey)
		}
		seen[j.IdempotencyKey] = true
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(j.IdempotencyKey, "spool-schedule:tick:"))
		if err != nil {
			t.Fatalf("job %s: idempotency key %q: %v", j.ID, j.IdempotencyKey, err)
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	if int64(len(seen)) != sc.FiredCount {
		t.Fatalf("%d jobs, but the schedule counts %d firings", len(seen), sc.FiredCount)
	}
	span := int64(last.Sub(first)/time.Second) + 1
	if got := sc.FiredCount + sc.MissedCount; got < span {
		t.Fatalf("firings from %s to %s: %d seconds, but %d fired + %d missed", first, last, span, sc.FiredCount, sc.MissedCount)
	}
	t.Logf("%d firings over %d seconds, %d missed (last reason %q), no fire time twice",
		sc.FiredCount, span, sc.MissedCount, sc.LastMissedReason)
	for _, n := range nodes {
		n.Stop(t, 30*time.Second)
	}
}
