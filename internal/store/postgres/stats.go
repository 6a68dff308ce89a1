package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// addStatsSQL adds one delta to its bucket; histograms are added element
// by element.
const addStatsSQL = `INSERT INTO spool_stats AS s (width_ms, queue, start, arrivals, succeeded, dead, cancelled, retries,
	wait_count, wait_sum, wait_hist, run_count, run_sum, run_hist, samples, depth_sum, ready_sum, active_sum)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (width_ms, queue, start) DO UPDATE SET
	arrivals = s.arrivals + excluded.arrivals,
	succeeded = s.succeeded + excluded.succeeded,
	dead = s.dead + excluded.dead,
	cancelled = s.cancelled + excluded.cancelled,
	retries = s.retries + excluded.retries,
	wait_count = s.wait_count + excluded.wait_count,
	wait_sum = s.wait_sum + excluded.wait_sum,
	wait_hist = ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0)
		FROM unnest(s.wait_hist, excluded.wait_hist) WITH ORDINALITY AS u(a, b, i) ORDER BY i),
	run_count = s.run_count + excluded.run_count,
	run_sum = s.run_sum + excluded.run_sum,
	run_hist = ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0)
		FROM unnest(s.run_hist, excluded.run_hist) WITH ORDINALITY AS u(a, b, i) ORDER BY i),
	samples = s.samples + excluded.samples,
	depth_sum = s.depth_sum + excluded.depth_sum,
	ready_sum = s.ready_sum + excluded.ready_sum,
	active_sum = s.active_sum + excluded.active_sum`

// AddStats adds each delta to its stored bucket, in one transaction. The
// rows are written in key order, so two nodes flushing the same buckets
// at once wait for each other instead of deadlocking.
func (s *Store) AddStats(ctx context.Context, deltas []store.StatsBucket) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	for i := range deltas {
		if deltas[i].Queue == "" || deltas[i].Width <= 0 {
			return spool.Invalidf("a telemetry bucket needs a queue name and a positive width")
		}
	}
	if len(deltas) == 0 {
		return nil
	}
	sorted := slices.Clone(deltas)
	slices.SortFunc(sorted, func(a, b store.StatsBucket) int {
		return cmp.Or(cmp.Compare(a.Width, b.Width), cmp.Compare(a.Queue, b.Queue), a.Start.Compare(b.Start))
	})
	err := retry(ctx, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var b pgx.Batch
			for i := range sorted {
				d := &sorted[i]
				b.Queue(addStatsSQL, d.Width.Milliseconds(), d.Queue, d.Start.UTC(), d.Arrivals, d.Succeeded, d.Dead,
					d.Cancelled, d.Retries, d.WaitCount, d.WaitSum, d.WaitHist[:], d.RunCount, d.RunSum, d.RunHist[:],
					d.Samples, d.DepthSum, d.ReadySum, d.ActiveSum)
			}
			return tx.SendBatch(ctx, &b).Close()
		})
	})
	if err != nil {
		return interpretError("storing telemetry", err)
	}
	return nil
}

// Stats returns the buckets of one width starting in [From, To).
func (s *Store) Stats(ctx context.Context, p store.StatsParams) ([]store.StatsBucket, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if p.Width <= 0 {
		return nil, spool.Invalidf("a telemetry query needs a positive width")
	}
	rows, err := s.pool.Query(ctx, `SELECT queue, start, arrivals, succeeded, dead, cancelled, retries,
			wait_count, wait_sum, wait_hist, run_count, run_sum, run_hist, samples, depth_sum, ready_sum, active_sum
		FROM spool_stats WHERE width_ms = $1 AND ($2 = '' OR queue = $2) AND start >= $3 AND start < $4
		ORDER BY queue, start`, p.Width.Milliseconds(), p.Queue, p.From.UTC(), p.To.UTC())
	if err != nil {
		return nil, interpretError("reading telemetry", err)
	}
	defer rows.Close()
	var out []store.StatsBucket
	var wh, rh []int64
	for rows.Next() {
		b := store.StatsBucket{Width: p.Width}
		if err := rows.Scan(&b.Queue, &b.Start, &b.Arrivals, &b.Succeeded, &b.Dead, &b.Cancelled, &b.Retries,
			&b.WaitCount, &b.WaitSum, &wh, &b.RunCount, &b.RunSum, &rh, &b.Samples, &b.DepthSum, &b.ReadySum,
			&b.ActiveSum); err != nil {
			return nil, interpretError("reading telemetry", err)
		}
		if len(wh) != store.HistBuckets || len(rh) != store.HistBuckets {
			return nil, fmt.Errorf("postgres store: telemetry of queue %q has histograms of %d and %d buckets, want %d",
				b.Queue, len(wh), len(rh), store.HistBuckets)
		}
		copy(b.WaitHist[:], wh)
		copy(b.RunHist[:], rh)
		b.Start = b.Start.UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, interpretError("reading telemetry", err)
	}
	return out, nil
}

// PurgeStats deletes the buckets of one width that start before before.
func (s *Store) PurgeStats(ctx context.Context, width time.Duration, before time.Time) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	if width <= 0 {
		return 0, spool.Invalidf("a telemetry purge needs a positive width")
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM spool_stats WHERE width_ms = $1 AND start < $2`, width.Milliseconds(), before.UTC())
	if err != nil {
		return 0, interpretError("purging telemetry", err)
	}
	return int(tag.RowsAffected()), nil
}
