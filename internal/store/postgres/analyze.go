package postgres

import (
	"context"
	"time"
)

// Planner statistics of a new table.
//
// Without statistics, PostgreSQL estimates that a queue holds one ready
// job, and for Lease it then prefers spool_jobs_ready_since (smaller) to
// spool_jobs_ready, sorting the queue's ready jobs in every Lease: O(jobs)
// per call, 40ms at 30,000 jobs, instead of a few index pages. Autovacuum
// analyzes the table within its naptime (a minute by default) once enough
// rows changed, but a new installation that receives a burst in its first
// minute, or any short test or benchmark, runs on no statistics until
// then. So each Store checks at Open and then every analyzeEvery whether
// spool_jobs was ever analyzed; once it holds analyzeMinRows jobs and was
// not, one Store (an advisory lock elects it) runs ANALYZE. Afterwards
// autovacuum keeps the statistics (the table's analyze scale factor is
// 2%), and the loop ends.
const (
	defaultAnalyzeEvery = 5 * time.Second
	analyzeMinRows      = 1000
)

func (s *Store) analyzeLoop(ctx context.Context, every time.Duration) {
	defer close(s.analyzed)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		done, err := s.analyzeIfNeeded(ctx)
		if done || ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Debug("postgres store: checking the planner statistics of spool_jobs", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// analyzeIfNeeded runs ANALYZE spool_jobs if it never ran and the table
// has enough rows to matter; done reports that nothing is left to do.
func (s *Store) analyzeIfNeeded(ctx context.Context) (done bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var (
		analyzed bool
		rows     int64
	)
	// Rows are counted, up to analyzeMinRows: the statistics views lag by
	// up to ten seconds.
	err = s.pool.QueryRow(ctx, `
		SELECT coalesce(last_analyze, last_autoanalyze) IS NOT NULL
		FROM pg_stat_user_tables WHERE relid = 'spool_jobs'::regclass`).Scan(&analyzed)
	if err != nil || analyzed {
		return analyzed, err
	}
	err = s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT FROM spool_jobs LIMIT $1) j`, analyzeMinRows).Scan(&rows)
	if err != nil {
		return false, err
	}
	if rows < analyzeMinRows {
		return false, nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	var leader bool
	const key = `hashtextextended('spool.analyze/' || current_schema(), 0)`
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+key+`)`).Scan(&leader); err != nil || !leader {
		return false, err // another node is at it; look again later
	}
	defer func() {
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock(`+key+`)`)
	}()
	start := time.Now()
	if _, err := conn.Exec(ctx, `ANALYZE spool_jobs`); err != nil {
		return false, err
	}
	s.log.Info("postgres store: analyzed spool_jobs, which had no planner statistics yet", "rows", rows,
		"duration", time.Since(start).Round(time.Millisecond))
	return true, nil
}
