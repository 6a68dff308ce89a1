package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

var getSQL = `SELECT ` + cols("", true) + ` FROM spool_jobs WHERE id = $1`

// Get returns a job with payload and result.
func (s *Store) Get(ctx context.Context, id string) (*store.Record, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	r, err := scanRecord(s.pool.QueryRow(ctx, getSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, spool.NotFoundf("job %q not found", id)
	}
	if err != nil {
		return nil, interpretError(fmt.Sprintf("reading job %q", id), err)
	}
	return r, nil
}

// listStateSQL pages through one state of a queue on spool_jobs_list.
var listStateSQL = `SELECT ` + cols("", false) + ` FROM spool_jobs
WHERE queue = $1 AND state = $2 AND id > $3 ORDER BY id LIMIT $4`

// listAllSQL pages through every state of a queue: one branch per state,
// each an ordered range of spool_jobs_list, merged in id order (Merge
// Append), so a page costs its size, not the queue's.
var listAllSQL = func() string {
	var b strings.Builder
	b.WriteString(`SELECT * FROM (`)
	for i, st := range spool.States {
		if i > 0 {
			b.WriteString("\n    UNION ALL\n")
		}
		fmt.Fprintf(&b, `    (SELECT %s FROM spool_jobs WHERE queue = $1 AND state = '%s' AND id > $2 ORDER BY id LIMIT $3)`,
			cols("", false), st)
	}
	b.WriteString("\n) page ORDER BY id LIMIT $3")
	return b.String()
}()

// listFilteredSQL is the query of a ListJobs with a type, tag or ordering
// key: listStateSQL or listAllSQL with the filters in every branch.
func listFilteredSQL(p *store.ListJobsParams, limit int64) (string, []any) {
	args := []any{p.Queue, p.After, limit}
	var filters strings.Builder
	if p.Type != "" {
		args = append(args, p.Type)
		fmt.Fprintf(&filters, " AND type = $%d", len(args))
	}
	if p.Tag != "" {
		args = append(args, p.Tag)
		fmt.Fprintf(&filters, " AND $%d = ANY (tags)", len(args))
	}
	if p.OrderingKey != "" {
		args = append(args, p.OrderingKey)
		fmt.Fprintf(&filters, " AND ordering_key = $%d", len(args))
	}
	if p.PayloadField != "" {
		// Payloads are stored as the JSON text the engine validated.
		// jsonb cannot hold U+0000: both sides are compared with its
		// escapes replaced (store.NoNULEscapes), as the embedded store does.
		args = append(args, p.PayloadField, string(store.NoNULEscapes([]byte(p.PayloadValue))))
		fmt.Fprintf(&filters, ` AND replace(convert_from(payload, 'UTF8'), '\u0000', '\ufffd')::jsonb -> $%d::text = $%d::jsonb`, len(args)-1, len(args))
	}
	var b strings.Builder
	b.WriteString(`SELECT * FROM (`)
	n := 0
	for _, st := range spool.States {
		if p.State != "" && st != p.State {
			continue
		}
		if n > 0 {
			b.WriteString("\n    UNION ALL\n")
		}
		n++
		fmt.Fprintf(&b, `    (SELECT %s FROM spool_jobs WHERE queue = $1 AND state = '%s' AND id > $2%s ORDER BY id LIMIT $3)`,
			cols("", false), st, filters.String())
	}
	b.WriteString("\n) page ORDER BY id LIMIT $3")
	return b.String(), args
}

// ListJobs returns a page of a queue's jobs in id order, without payload and
// result. An unknown queue has no jobs.
func (s *Store) ListJobs(ctx context.Context, p store.ListJobsParams) ([]*store.Record, string, error) {
	if err := s.begin(ctx); err != nil {
		return nil, "", err
	}
	if p.Limit <= 0 {
		return nil, "", spool.Invalidf("list limit must be positive, got %d", p.Limit)
	}
	if p.State != "" && !p.State.Valid() {
		return nil, "", spool.Invalidf("unknown state %q", p.State)
	}
	// One more than the page tells whether a next page exists.
	limit := int64(p.Limit) + 1
	var (
		rows pgx.Rows
		err  error
	)
	switch {
	case p.Filtered():
		q, args := listFilteredSQL(&p, limit)
		rows, err = s.pool.Query(ctx, q, args...)
	case p.State == "":
		rows, err = s.pool.Query(ctx, listAllSQL, p.Queue, p.After, limit)
	default:
		rows, err = s.pool.Query(ctx, listStateSQL, p.Queue, string(p.State), p.After, limit)
	}
	recs, err := collect(rows, err)
	if err != nil {
		return nil, "", interpretError(fmt.Sprintf("listing jobs of queue %q", p.Queue), err)
	}
	if len(recs) <= p.Limit {
		return recs, "", nil
	}
	recs = recs[:p.Limit]
	return recs, recs[len(recs)-1].ID, nil
}

// collect reads every record of rows.
func collect(rows pgx.Rows, err error) ([]*store.Record, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	recs := []*store.Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, rows.Err()
}

var expiredSQL = `SELECT ` + cols("", false) + ` FROM spool_jobs
WHERE state = 'active' AND coalesce(lease_expires_at, '-infinity'::timestamptz) <= $1
ORDER BY coalesce(lease_expires_at, '-infinity'::timestamptz), id
LIMIT $2`

// ExpiredLeases returns up to limit active jobs whose lease expired at or
// before now, oldest expiry first, with their tokens and without payload
// and result. It only reads: the engine's compare-and-set Update decides,
// so nodes running it at once cannot both expire one lease.
func (s *Store) ExpiredLeases(ctx context.Context, now time.Time, limit int) ([]*store.Record, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, spool.Invalidf("expired leases limit must be positive, got %d", limit)
	}
	rows, err := s.pool.Query(ctx, expiredSQL, now, int64(limit))
	recs, err := collect(rows, err)
	if err != nil {
		return nil, interpretError("finding expired leases", err)
	}
	return recs, nil
}

// queueSQL reads queues with their counts (the sum of the counter shards)
// and the oldest ready time (the first entry of spool_jobs_ready_since), all
// from one snapshot.
const queueSQL = `
SELECT q.name, q.config, o.oldest, c.states, c.ns
FROM spool_queues q
LEFT JOIN LATERAL (
    SELECT coalesce(ready_at, created_at) AS oldest FROM spool_jobs
    WHERE queue = q.name AND state = 'ready' AND coalesce(ready_at, created_at) IS NOT NULL
    ORDER BY coalesce(ready_at, created_at)
    LIMIT 1
) o ON true
LEFT JOIN LATERAL (
    SELECT array_agg(state) AS states, array_agg(n) AS ns
    FROM (SELECT state, sum(n)::bigint AS n FROM spool_queue_counts WHERE queue = q.name GROUP BY state) s
) c ON true`

// Queue returns one queue, or spool.ErrNotFound if it was never used.
func (s *Store) Queue(ctx context.Context, name string) (*store.QueueRecord, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, queueSQL+` WHERE q.name = $1`, name)
	qs, err := collectQueues(rows, err)
	if err != nil {
		return nil, interpretError(fmt.Sprintf("reading queue %q", name), err)
	}
	if len(qs) == 0 {
		return nil, spool.NotFoundf("queue %q not found", name)
	}
	return qs[0], nil
}

// Usage counts the queues, and the jobs not yet finished with their
// payload bytes, from the queue table and the state counters (no scan of
// the jobs).
func (s *Store) Usage(ctx context.Context) (store.Usage, error) {
	if err := s.begin(ctx); err != nil {
		return store.Usage{}, err
	}
	var u store.Usage
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM spool_queues), coalesce(sum(n), 0)::bigint, coalesce(sum(bytes), 0)::bigint
		FROM spool_queue_counts WHERE state IN ('waiting', 'scheduled', 'ready', 'active')`).
		Scan(&u.Queues, &u.Unfinished, &u.PayloadBytes)
	if err != nil {
		return store.Usage{}, interpretError("counting queues and jobs", err)
	}
	return u, nil
}

// Queues lists every queue that was ever used, by name.
func (s *Store) Queues(ctx context.Context) ([]*store.QueueRecord, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, queueSQL+` ORDER BY q.name`)
	qs, err := collectQueues(rows, err)
	if err != nil {
		return nil, interpretError("listing queues", err)
	}
	return qs, nil
}

func collectQueues(rows pgx.Rows, err error) ([]*store.QueueRecord, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*store.QueueRecord{}
	for rows.Next() {
		var (
			q      store.QueueRecord
			config []byte
			oldest *time.Time
			states []string
			ns     []int64
		)
		if err := rows.Scan(&q.Name, &config, &oldest, &states, &ns); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(config, &q.Config); err != nil {
			return nil, &dataError{what: fmt.Sprintf("the config of queue %q", q.Name), err: err}
		}
		q.Counts = make(map[spool.State]int64, len(spool.States))
		for _, st := range spool.States {
			q.Counts[st] = 0
		}
		for i, st := range states {
			q.Counts[spool.State(st)] = ns[i]
		}
		if oldest != nil {
			q.OldestReady = oldest.UTC()
		}
		out = append(out, &q)
	}
	return out, rows.Err()
}
