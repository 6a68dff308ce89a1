package postgres

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolq/spool/internal/store"
)

// Flow control: ordering keys, and per-queue concurrency and rate limits,
// exact across any number of nodes.
//
// # Ordering keys
//
// A job with an ordering key is leasable only if no job of its (queue,
// ordering_key) with a lower seq is not yet terminal (orderingHeadSQL, in
// every lease statement; spool_jobs_ordering answers the probe from the
// key's unfinished jobs only). Why this is exact under concurrent leases
// on several nodes, at READ COMMITTED:
//
//   - Two leasers that both see a key's head A (seq 1) ready both try to
//     lock it; SKIP LOCKED gives it to one, the other skips it. Neither
//     can take the next job B (seq 2): in any snapshot in which B exists,
//     A exists too (see the next point) and is not terminal until it
//     finishes, so the NOT EXISTS fails. A snapshot older than A's finish
//     keeps B blocked a little longer, never less: the check can only
//     err on the safe side.
//   - For "B exists ⇒ A exists" seq order must be commit order within a
//     key: with two producers, B could take seq 2 and commit before A
//     (seq 1) does; a lease in between would start B, then A would be
//     startable too (nothing older than it), and both would run at once.
//     So Insert takes a transaction-scoped advisory lock per (queue, key)
//     of its keyed jobs (orderLockSQL), before the insert statement draws
//     seqs: inserts into one key commit one after the other, in seq
//     order. Inserts without an ordering key take no lock.
//   - A job waiting for its retry is scheduled, not terminal: it keeps its
//     key until it finishes for good.
//   - The probe walks blocked jobs: Lease skips a key's jobs behind its
//     head one by one (the embedded store does not). A queue whose ready
//     jobs are mostly blocked behind few keys costs Lease more; see "What
//     is left" in doc.go.
//
// # Concurrency and rate limits
//
// A lease naming a queue with store.QueueLimits runs in one transaction
// (leaseLimited) that first takes a transaction-scoped advisory lock per
// limited queue (in name order: no deadlock between leasers), then, with a
// snapshot taken after the locks (a new statement at READ COMMITTED, so it
// sees every lease committed by the previous holder, which released the
// lock only after committing), counts the queue's active jobs and reads its
// token bucket (spool_queue_buckets), leases at most the cap minus the
// active jobs and at most the whole tokens, and writes the bucket back.
// Leases of one limited queue are thus serialized cluster-wide; jobs that
// stop being active are not (acks take no lock), which only makes the
// count of a concurrent leaser too high for a moment, never too low.
// Leases that name no limited queue run exactly as before: no lock, no
// transaction, one statement. Buckets refill by the lease's Now, which is
// the leasing node's clock: a bucket's time never goes back, so a node
// whose clock lags refills nothing until its clock catches up.

// orderingHeadSQL is true for a job of spool_jobs that is unkeyed or the
// oldest job of its key not yet terminal.
const orderingHeadSQL = `(ordering_key = '' OR NOT EXISTS (
            SELECT 1 FROM spool_jobs o
            WHERE o.queue = spool_jobs.queue AND o.ordering_key = spool_jobs.ordering_key
              AND o.seq < spool_jobs.seq AND o.ordering_key <> ''
              AND o.state IN ('waiting', 'scheduled', 'ready', 'active')))`

// orderLockSQL takes the advisory lock of each "queue/key" of $1 (sorted,
// distinct: every inserter locks in one order). The volatile function runs
// after the sort.
const orderLockSQL = `
SELECT pg_advisory_xact_lock(hashtextextended('spool.order/' || current_schema() || '/' || k, 0))
FROM unnest($1::text[]) WITH ORDINALITY AS u(k, ord)
ORDER BY ord`

// orderingLocks returns the sorted, distinct "queue/key" names of the keyed
// jobs of an insert (a queue name never holds '/').
func orderingLocks(recs []*store.Record) []string {
	var out []string
	for _, r := range recs {
		if r.OrderingKey != "" && !r.State.Terminal() {
			out = append(out, r.Queue+"/"+r.OrderingKey)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// leaseCappedSQL is leaseSQL with a cap per queue ($7).
var leaseCappedSQL = leaseStatement("unnest($1::text[], $7::int8[]) WITH ORDINALITY AS q(name, cap, ord)", "least($3, q.cap)")

// flowLockSQL takes the flow lock of each queue of $1, which is sorted.
const flowLockSQL = `
SELECT pg_advisory_xact_lock(hashtextextended('spool.flow/' || current_schema() || '/' || name, 0))
FROM unnest($1::text[]) WITH ORDINALITY AS u(name, ord)
ORDER BY ord`

// flowStateSQL reads, per queue of $1, its active jobs (from the counters
// the triggers keep) and its token bucket (NULL: none yet).
const flowStateSQL = `
SELECT u.name,
       (SELECT coalesce(sum(c.n), 0) FROM spool_queue_counts c WHERE c.queue = u.name AND c.state = 'active'),
       b.tokens, b.updated_at
FROM unnest($1::text[]) AS u(name)
LEFT JOIN spool_queue_buckets b ON b.queue = u.name`

// bucketSQL writes token buckets back.
const bucketSQL = `
INSERT INTO spool_queue_buckets AS b (queue, tokens, updated_at)
SELECT * FROM unnest($1::text[], $2::float8[], $3::timestamptz[])
ON CONFLICT (queue) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at`

// limitedQueues returns the queues of queues that have limits, sorted.
func (s *Store) limitedQueues(queues []string, limits map[string]store.QueueLimits) []string {
	var out []string
	for _, q := range queues {
		if l, ok := limits[q]; ok && (l.MaxActive > 0 || l.Rate > 0) {
			out = append(out, q)
			if l.MaxActive > 0 {
				s.cappedQueues.Store(q, struct{}{})
			}
		}
	}
	slices.Sort(out)
	return out
}

// capped reports whether queue was leased with a concurrency cap: its
// jobs that stop being active wake the other nodes' waiters.
func (s *Store) capped(queue string) bool {
	_, ok := s.cappedQueues.Load(queue)
	return ok
}

// leaseLimited leases from queues (deduplicated, in order), some of which
// (limited, sorted) have limits, in one transaction.
func (s *Store) leaseLimited(ctx context.Context, queues, limited []string, newToken func() string, p store.LeaseParams) ([]*store.Record, error) {
	type bucket struct {
		tokens float64
		at     time.Time
	}
	var (
		recs    []*store.Record
		buckets map[string]bucket
	)
	err := retry(ctx, func() error {
		recs, buckets = nil, make(map[string]bucket)
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, flowLockSQL, limited); err != nil {
				return err
			}
			caps := make(map[string]int, len(limited))
			rows, err := tx.Query(ctx, flowStateSQL, limited)
			if err != nil {
				return err
			}
			for rows.Next() {
				var (
					name   string
					active int64
					tokens *float64
					at     *time.Time
				)
				if err := rows.Scan(&name, &active, &tokens, &at); err != nil {
					rows.Close()
					return err
				}
				lim := p.Limits[name]
				c := p.Max
				if lim.MaxActive > 0 {
					c = min(c, lim.MaxActive-int(active))
				}
				if lim.Rate > 0 {
					b := bucket{lim.BucketSize(), p.Now}
					if tokens != nil && at != nil {
						b.tokens, b.at = lim.Refill(*tokens, *at, p.Now)
					}
					buckets[name] = b
					c = min(c, int(math.Floor(b.tokens)))
				}
				caps[name] = max(c, 0)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			qcap := make([]int64, len(queues))
			total := 0
			for i, q := range queues {
				c, ok := caps[q]
				if !ok {
					c = p.Max
				}
				qcap[i] = int64(c)
				total += c
			}
			n := min(p.Max, total)
			if n > 0 {
				tokens := make([]string, n)
				for i := range tokens {
					tokens[i] = newToken()
				}
				recs, err = leaseRows(ctx, tx, leaseCappedSQL, queues, p.Now, int64(n), tokens, p.Worker, p.ExpiresAt, qcap)
				if err != nil {
					return err
				}
			}
			if len(buckets) == 0 {
				return nil
			}
			for _, r := range recs {
				if b, ok := buckets[r.Queue]; ok {
					b.tokens--
					buckets[r.Queue] = b
				}
			}
			var names []string
			var toks []float64
			var ats []time.Time
			for _, q := range limited {
				if b, ok := buckets[q]; ok {
					names, toks, ats = append(names, q), append(toks, b.tokens), append(ats, b.at)
				}
			}
			_, err = tx.Exec(ctx, bucketSQL, names, toks, ats)
			return err
		})
	})
	if err != nil {
		return nil, interpretError(fmt.Sprintf("leasing from %q", queues), err)
	}
	if p.Throttled != nil {
		for _, q := range limited {
			if b, ok := buckets[q]; ok && b.tokens < 1 {
				p.Throttled(q, p.Limits[q].NextToken(b.tokens, b.at))
			}
		}
	}
	if recs == nil {
		recs = []*store.Record{}
	}
	return recs, nil
}
