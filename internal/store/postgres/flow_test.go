package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/postgres"
)

// TestLeasePlanOrderingKeys: with many keyed jobs, Lease still walks the
// ready index and checks each candidate's key with the ordering index,
// never a scan of the key's jobs or of the table; the capped lease of
// limited queues reads the same way.
func TestLeasePlanOrderingKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a table")
	}
	t.Parallel()
	schema := freshSchema(t)
	open(t, schema)
	pool := admin.get(t)
	_, err := pool.Exec(t.Context(), fmt.Sprintf(`
		INSERT INTO %s.spool_jobs (id, queue, type, state, priority, rev, attempt, max_attempts, run_at, created_at, ready_at, ordering_key)
		SELECT gen_random_uuid()::text, 'q', 't', CASE WHEN i %% 10 = 0 THEN 'succeeded' ELSE 'ready' END, 0, 1, 0, 3,
		       now(), now(), now(), CASE WHEN i %% 2 = 0 THEN 'key-' || (i %% 50) ELSE '' END
		FROM generate_series(1, 40000) AS i`, pgx.Identifier{schema}.Sanitize()))
	require.NoError(t, err)
	_, err = pool.Exec(t.Context(), "ANALYZE "+pgx.Identifier{schema, "spool_jobs"}.Sanitize())
	require.NoError(t, err)

	now := time.Now().Add(time.Second)
	tokens := make([]string, 10)
	for _, tc := range []struct {
		name string
		sql  string
		args []any
	}{
		{"Lease", postgres.LeaseSQL, []any{[]string{"q"}, now, int64(10), tokens, "w", now.Add(time.Minute)}},
		{"LeaseCapped", postgres.LeaseCappedSQL, []any{[]string{"q"}, now, int64(10), tokens, "w", now.Add(time.Minute), []int64{3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := pool.Begin(t.Context())
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(context.Background()) }()
			_, err = tx.Exec(t.Context(), "SET LOCAL search_path = "+pgx.Identifier{schema}.Sanitize())
			require.NoError(t, err)
			rows, err := tx.Query(t.Context(), "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "+tc.sql, tc.args...)
			require.NoError(t, err)
			var lines []string
			for rows.Next() {
				var l string
				require.NoError(t, rows.Scan(&l))
				lines = append(lines, l)
			}
			require.NoError(t, rows.Err())
			plan := strings.Join(lines, "\n")
			t.Logf("plan of %s:\n%s", tc.name, plan)
			require.Contains(t, plan, "Index Scan using spool_jobs_ready on spool_jobs")
			require.Contains(t, plan, "spool_jobs_ordering on spool_jobs o")
			require.NotContains(t, plan, "Seq Scan on spool_jobs")
			require.NotContains(t, plan, "Sort")
		})
	}
}

func TestOrderingLocksSortedDistinct(t *testing.T) {
	t.Parallel()
	a, b, c, d := job("q"), job("q"), job("p"), job("q")
	a.OrderingKey, b.OrderingKey, c.OrderingKey = "k2", "k1", "k1"
	a2 := job("q")
	a2.OrderingKey = "k2"
	require.Equal(t, []string{"p/k1", "q/k1", "q/k2"}, postgres.OrderingLocks([]*store.Record{a, b, c, d, a2}))
}

// TestConcurrencyLimitAcrossStores: leasers on two stores (two nodes) of
// one database never hold more active jobs than the cap, and the rate
// limit's bucket is shared.
func TestConcurrencyLimitAcrossStores(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	nodes := []*postgres.Store{open(t, schema), open(t, schema)}
	var in []*store.Record
	for range 40 {
		in = append(in, job("q"))
	}
	insert(t, nodes[0], in...)
	now := time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)
	lim := map[string]store.QueueLimits{"q": {MaxActive: 3}}

	var (
		mu     sync.Mutex
		active []*store.Record
		most   int
		wg     sync.WaitGroup
	)
	for w := range 12 {
		wg.Go(func() {
			s := nodes[w%2]
			for range 6 {
				recs, err := s.Lease(t.Context(), store.LeaseParams{Queues: []string{"q"}, Max: 2, Worker: "w",
					Now: now, ExpiresAt: now.Add(time.Minute), Limits: lim})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				active = append(active, recs...)
				most = max(most, len(active))
				var done *store.Record
				if len(active) > 0 && w%3 == 0 {
					done, active = active[0], active[1:]
				}
				mu.Unlock()
				if done != nil {
					// Finish a job, through either node: its place frees.
					done.State, done.Token, done.LeaseExpiresAt, done.FinishedAt = spool.StateSucceeded, "", nil, &now
					_, errs, err := nodes[(w+1)%2].Update(t.Context(), []store.Change{{Record: done}})
					if err == nil {
						err = errs[0]
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, most, 3, "never more than 3 active")

	// A rate limit's bucket is one for both nodes.
	insert(t, nodes[0], job("r"), job("r"), job("r"))
	rl := map[string]store.QueueLimits{"r": {Rate: 1, Burst: 2}}
	got := 0
	for _, s := range nodes {
		recs, err := s.Lease(t.Context(), store.LeaseParams{Queues: []string{"r"}, Max: 10, Worker: "w",
			Now: now, ExpiresAt: now.Add(time.Minute), Limits: rl})
		require.NoError(t, err)
		got += len(recs)
	}
	require.Equal(t, 2, got, "the burst is shared by the nodes")
}

// TestCrossNodeFlowWakeUps: a long-poll on node B blocked by an ordering
// key, or by a concurrency cap, answers soon after node A finishes the job
// in the way (not at its 30s wait, nor at a recheck: an hour here).
func TestCrossNodeFlowWakeUps(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	a, _ := startedNode(t, schema)
	b, bst := startedNode(t, schema)
	ctx := t.Context()

	res, err := a.Enqueue(ctx, "ord", []spool.EnqueueRequest{{Type: "t", OrderingKey: "k"}, {Type: "t", OrderingKey: "k"}})
	require.NoError(t, err)
	first, err := a.Lease(ctx, spool.LeaseRequest{Queues: []string{"ord"}, Max: 10})
	require.NoError(t, err)
	require.Len(t, first, 1)
	ch := longPoll(t, b, bst, "ord")
	_, err = a.Complete(ctx, first[0].ID, spool.CompleteRequest{Token: first[0].Lease.Token})
	require.NoError(t, err)
	jobs, lat := woken(t, ch, time.Now())
	require.Len(t, jobs, 1)
	require.Equal(t, res[1].Job.ID, jobs[0].ID)
	t.Logf("ordering key freed on a, b answered in %s", lat)

	_, err = a.PatchQueue(ctx, "cap", spool.QueueConfig{Concurrency: ptr(1)})
	require.NoError(t, err)
	_, err = a.Enqueue(ctx, "cap", []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}})
	require.NoError(t, err)
	first, err = a.Lease(ctx, spool.LeaseRequest{Queues: []string{"cap"}, Max: 10})
	require.NoError(t, err)
	require.Len(t, first, 1)
	ch = longPoll(t, b, bst, "cap")
	_, err = a.Complete(ctx, first[0].ID, spool.CompleteRequest{Token: first[0].Lease.Token})
	require.NoError(t, err)
	jobs, lat = woken(t, ch, time.Now())
	require.Len(t, jobs, 1)
	t.Logf("capped queue freed on a, b answered in %s", lat)
}

// TestPauseAcrossNodes: a queue paused through node A still admits jobs on
// B and hands none out on either; resuming on A wakes B's long-poll.
func TestPauseAcrossNodes(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	a, _ := startedNode(t, schema)
	b, _ := startedNode(t, schema)
	ctx := t.Context()

	_, err := a.PatchQueue(ctx, "p", spool.QueueConfig{Paused: ptr(true)})
	require.NoError(t, err)
	res, err := b.Enqueue(ctx, "p", []spool.EnqueueRequest{{Type: "t"}})
	require.NoError(t, err, "a paused queue admits jobs")
	for _, e := range []*engine.Engine{a, b} {
		jobs, err := e.Lease(ctx, spool.LeaseRequest{Queues: []string{"p"}, Max: 10})
		require.NoError(t, err)
		require.Empty(t, jobs, "a paused queue hands out nothing")
	}
	// A paused queue is not even asked of the store, so there is no
	// telling when the long-poll waits: it may also find the job at its
	// first look, which is right too.
	ch := make(chan []*spool.Job, 1)
	go func() {
		wait := spool.Duration(30 * time.Second)
		jobs, err := b.Lease(context.Background(), spool.LeaseRequest{Queues: []string{"p"}, Max: 1, Wait: &wait})
		if err != nil {
			t.Errorf("long-poll: %v", err)
		}
		ch <- jobs
	}()
	_, err = a.PatchQueue(ctx, "p", spool.QueueConfig{Paused: ptr(false)})
	require.NoError(t, err)
	jobs, lat := woken(t, ch, time.Now())
	require.Len(t, jobs, 1)
	require.Equal(t, res[0].Job.ID, jobs[0].ID)
	t.Logf("resumed on a, b answered in %s", lat)
}
