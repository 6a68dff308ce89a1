package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store/postgres"
)

// TestQueryPlans checks, on a table of 60,000 jobs, that the hot statements
// read their partial indexes instead of scanning or sorting jobs. Run with
// -v to see the plans.
func TestQueryPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a table")
	}
	t.Parallel()
	schema := freshSchema(t)
	open(t, schema) // migrates
	ctx := t.Context()
	conn, err := admin.get(t).Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, "SET search_path = "+pgx.Identifier{schema}.Sanitize())
	require.NoError(t, err)
	defer func() { _, _ = conn.Exec(context.Background(), "RESET search_path") }()

	// 3 queues x 20,000 jobs: 70% ready (5 priorities), 10% scheduled,
	// 10% active, 10% terminal.
	_, err = conn.Exec(ctx, `
		INSERT INTO spool_jobs (id, queue, type, state, priority, rev, attempt, max_attempts, run_at, created_at,
		                        ready_at, lease_expires_at, finished_at, payload)
		SELECT gen_random_uuid()::text, 'q' || (i % 3), 'email.send',
		       CASE WHEN i % 10 < 7 THEN 'ready' WHEN i % 10 = 7 THEN 'scheduled'
		            WHEN i % 10 = 8 THEN 'active' ELSE 'succeeded' END,
		       i % 5, 1, 0, 3,
		       now() + CASE WHEN i % 10 = 7 THEN interval '1 hour' ELSE interval '0' END,
		       now(), now(),
		       CASE WHEN i % 10 = 8 THEN now() + (i % 100) * interval '1 second' END,
		       CASE WHEN i % 10 = 9 THEN now() - (i % 100) * interval '1 minute' END,
		       '{"to":"ada@example.com"}'
		FROM generate_series(1, 60000) AS i`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `
		INSERT INTO spool_jobs (id, queue, type, state, priority, rev, attempt, max_attempts, run_at, created_at, ready_at)
		SELECT gen_random_uuid()::text, 'sparse', 't', 'ready', 0, 1, 0, 3, now(), now(), now()
		FROM generate_series(1, 3)`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "ANALYZE spool_jobs")
	require.NoError(t, err)

	now := time.Now().Add(time.Second)
	var someID string
	require.NoError(t, conn.QueryRow(ctx, `SELECT id FROM spool_jobs WHERE state = 'active' LIMIT 1`).Scan(&someID))
	change := job("q1")
	change.ID, change.Rev, change.State = someID, 1, spool.StateSucceeded
	change.FinishedAt = &now
	fresh := job("q1")
	fresh.Rev = 1
	tokens := make([]string, 10)
	for i := range tokens {
		tokens[i] = "tok"
	}
	for _, tc := range []struct {
		name   string
		sql    string
		args   []any
		want   []string
		refuse []string
	}{
		{
			name: "Lease", sql: postgres.LeaseSQL,
			args: []any{[]string{"q1", "q2"}, now, int64(10), tokens, "w", now.Add(time.Minute)},
			want: []string{"Index Scan using spool_jobs_ready on spool_jobs", "LockRows", "Function Scan on unnest q"},
			// Neither a sort of the candidates nor a read of all ready jobs.
			refuse: []string{"Seq Scan on spool_jobs", "Sort"},
		},
		{
			// The first queue has 3 ready jobs: the rest comes from the
			// second, walked the same way.
			name: "LeaseAcrossQueues", sql: postgres.LeaseSQL,
			args:   []any{[]string{"sparse", "q2"}, now, int64(10), tokens, "w", now.Add(time.Minute)},
			want:   []string{"Index Scan using spool_jobs_ready on spool_jobs", "Function Scan on unnest q (actual rows=2 loops=1)"},
			refuse: []string{"Seq Scan on spool_jobs", "Sort"},
		},
		{
			name: "Update", sql: postgres.UpdateSQL, args: postgres.JobArgs(change),
			want:   []string{"Index Scan using spool_jobs_pkey on spool_jobs"},
			refuse: []string{"Seq Scan on spool_jobs"},
		},
		{
			name: "Insert", sql: postgres.InsertSQL,
			args:   append(postgres.JobArgs(fresh), []string{"q1"}, []int64{1 << 40}, false, int32(32), int64(128)),
			want:   []string{"Insert on spool_jobs"},
			refuse: []string{"Seq Scan on spool_jobs"},
		},
		{
			// Insert's fast paths: the ordinality column is the scan's
			// order, so ORDER BY ord sorts nothing.
			name: "InsertPlain", sql: postgres.PlainSQL, args: postgres.JobArgs(fresh),
			want:   []string{"Insert on spool_jobs"},
			refuse: []string{"Seq Scan on spool_jobs", "Sort"},
		},
		{
			name: "InsertFresh", sql: postgres.FreshSQL, args: postgres.FreshJobArgs(fresh),
			want:   []string{"Insert on spool_jobs"},
			refuse: []string{"Seq Scan on spool_jobs", "Sort"},
		},
		{
			name: "ListAllStates", sql: postgres.ListAllSQL, args: []any{"q1", "", int64(51)},
			want:   []string{"Merge Append", "Index Scan using spool_jobs_list on spool_jobs"},
			refuse: []string{"Seq Scan on spool_jobs"},
		},
		{
			name: "ExpiredLeases", sql: postgres.ExpiredSQL, args: []any{now.Add(10 * time.Second), int64(1000)},
			want:   []string{"spool_jobs_active"},
			refuse: []string{"Seq Scan on spool_jobs"},
		},
		{
			name: "PromoteDue", sql: postgres.PromoteSQL, args: []any{now.Add(2 * time.Hour), int64(1000)},
			want:   []string{"Index Scan using spool_jobs_scheduled on spool_jobs"},
			refuse: []string{"Seq Scan on spool_jobs"},
		},
		{
			// NextDue's refresh, run by every PromoteDue: the first entry
			// of the scheduled index, not a scan of scheduled jobs.
			name: "NextDue", sql: postgres.NextDueSQL,
			want:   []string{"Index Only Scan using spool_jobs_scheduled on spool_jobs", "Limit"},
			refuse: []string{"Seq Scan on spool_jobs", "Aggregate"},
		},
		{
			name: "Purge", sql: postgres.PurgeSQL, args: []any{"q1", now, int64(1000)},
			want:   []string{"spool_jobs_terminal"},
			refuse: []string{"Seq Scan on spool_jobs"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// EXPLAIN ANALYZE runs the statement: in a transaction rolled
			// back, so every case sees the same table.
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(context.Background()) }()
			rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) "+tc.sql, tc.args...)
			require.NoError(t, err)
			var lines []string
			for rows.Next() {
				var line string
				require.NoError(t, rows.Scan(&line))
				lines = append(lines, line)
			}
			require.NoError(t, rows.Err())
			plan := strings.Join(lines, "\n")
			t.Logf("plan of %s:\n%s", tc.name, plan)
			for _, w := range tc.want {
				require.Contains(t, plan, w)
			}
			for _, r := range tc.refuse {
				require.NotContains(t, plan, r)
			}
		})
	}
}

// TestLeasePlanIgnoresStatistics: Lease reads spool_jobs_ready whether or
// not the table has planner statistics (migration 3 keeps the OldestReady
// index out of its reach), and a new store whose table fills before
// autovacuum looks at it gets statistics anyway.
func TestLeasePlanIgnoresStatistics(t *testing.T) {
	t.Parallel()
	schema := freshSchema(t)
	s := openWith(t, postgres.WithAnalyzeEvery(postgres.Options{Schema: schema, MaxConns: 4}, time.Hour))
	insert(t, s, job("q"))
	// Then 90,000 ready jobs in two queues, behind the store's back.
	pool := admin.get(t)
	_, err := pool.Exec(t.Context(), fmt.Sprintf(`
		INSERT INTO %s.spool_jobs (id, queue, type, state, priority, rev, attempt, max_attempts, run_at, created_at, ready_at)
		SELECT gen_random_uuid()::text, CASE WHEN i %% 3 = 0 THEN 'q' ELSE 'other' END, 't', 'ready', 0, 1, 0, 3, now(), now(), now()
		FROM generate_series(1, 90000) AS i`, pgx.Identifier{schema}.Sanitize()))
	require.NoError(t, err)
	checkPlan := func(when string, noSort bool) {
		plan := leasePlan(t, schema)
		t.Logf("lease plan %s:\n%s", when, plan)
		require.Regexp(t, `(?m)spool_jobs_ready(\s|$)`, plan, "lease reads the ready index (%s)", when)
		require.NotContains(t, plan, "spool_jobs_ready_since", "lease never reads the OldestReady index (%s)", when)
		if noSort {
			require.NotContains(t, plan, "Sort Key: spool_jobs.priority", "lease does not sort a queue (%s)", when)
		}
	}
	// Without statistics the planner used to take the OldestReady index and
	// sort; migration 3 rules that out.
	checkPlan("before any ANALYZE", true)

	// A store that checks soon (the first one checked at Open only).
	openWith(t, postgres.WithAnalyzeEvery(postgres.Options{Schema: schema, MaxConns: 2}, 20*time.Millisecond))
	require.Eventually(t, func() bool {
		var last *time.Time
		err := pool.QueryRow(t.Context(), `
			SELECT coalesce(s.last_analyze, s.last_autoanalyze)
			FROM pg_stat_user_tables s WHERE s.schemaname = $1 AND s.relname = 'spool_jobs'`, schema).Scan(&last)
		return err == nil && last != nil
	}, 30*time.Second, 20*time.Millisecond, "spool_jobs analyzed")
	// With statistics it may still prefer a bitmap scan of the ready index
	// and a top-N sort for a large queue (see "What is left" in doc.go).
	checkPlan("after ANALYZE", false)
}

func leasePlan(t *testing.T, schema string) string {
	t.Helper()
	tx, err := admin.get(t).Begin(t.Context())
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	_, err = tx.Exec(t.Context(), "SET LOCAL search_path = "+pgx.Identifier{schema}.Sanitize())
	require.NoError(t, err)
	now := time.Date(2032, time.January, 1, 0, 0, 0, 0, time.UTC)
	rows, err := tx.Query(t.Context(), "EXPLAIN (COSTS OFF) "+postgres.LeaseSQL,
		[]string{"q"}, now, int64(10), make([]string, 10), "w", now.Add(time.Minute))
	require.NoError(t, err)
	var lines []string
	for rows.Next() {
		var l string
		require.NoError(t, rows.Scan(&l))
		lines = append(lines, l)
	}
	require.NoError(t, rows.Err())
	return strings.Join(lines, "\n")
}
