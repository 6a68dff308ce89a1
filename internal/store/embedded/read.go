package embedded

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Get returns a job with payload and result.
func (s *Store) Get(ctx context.Context, id string) (*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec, a, err := s.get(id)
	if err != nil {
		return nil, err
	}
	if err := s.finish(&a); err != nil {
		return nil, err
	}
	return rec, nil
}

func (s *Store) get(id string) (rec *store.Record, a after, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, a, err
	}
	j, err := s.job(nil, id)
	if err != nil {
		return nil, a, err
	}
	if j == nil {
		return nil, a, spool.NotFoundf("job %q not found", id)
	}
	rec = j.rec.Clone()
	if j.hasPayload || j.hasResult {
		a.loads = []bodyLoad{{j: j, rec: rec, payload: true, result: true}}
		a.snap = s.snapshot()
	}
	return rec, a, nil
}

// readPebble runs fn, which reads keys kept in Pebble only (no index),
// under the read lock, then waits until every write its answer may show
// is synced: a read never answers with what a crash could still undo.
func (s *Store) readPebble(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if err := s.usable(); err != nil {
		s.mu.RUnlock()
		return err
	}
	a := after{barrier: s.applied}
	err := fn()
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	return s.finish(&a)
}

// ListJobs returns a page of a queue's jobs in id order, without payload and
// result. An unknown queue has no jobs.
func (s *Store) ListJobs(ctx context.Context, p store.ListJobsParams) ([]*store.Record, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if p.Limit <= 0 {
		return nil, "", spool.Invalidf("list limit must be positive, got %d", p.Limit)
	}
	if p.State != "" && !p.State.Valid() {
		return nil, "", spool.Invalidf("unknown state %q", p.State)
	}
	if p.PayloadField != "" {
		return s.listByPayload(&p)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, "", err
	}
	recs := []*store.Record{}
	q := s.x.queues[p.Queue]
	if q == nil {
		return recs, "", nil
	}
	if p.Filtered() {
		return s.listFiltered(q, &p)
	}
	ids, err := s.pageIDs(q, p.State, p.After, p.Limit)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ids) > p.Limit {
		ids = ids[:p.Limit]
		next = ids[p.Limit-1]
	}
	for _, id := range ids {
		j, err := s.indexedJob(id, "state")
		if err != nil {
			return nil, "", err
		}
		recs = append(recs, j.rec.Clone())
	}
	return recs, next, nil
}

// filterScan bounds the jobs one filtered ListJobs examines, so that a
// filter few jobs pass does not hold the store for a whole queue's scan.
const filterScan = 10_000

// listFiltered is ListJobs with a type, tag or ordering key: it examines
// at most filterScan jobs, and answers a short page with a cursor when it
// stops there. Call with s.mu held.
func (s *Store) listFiltered(q *queueState, p *store.ListJobsParams) ([]*store.Record, string, error) {
	recs := []*store.Record{}
	next, err := s.scanFiltered(q, p, p.Limit, func(j *job) { recs = append(recs, j.rec.Clone()) })
	return recs, next, err
}

// scanFiltered calls keep, in id order, for up to n of q's jobs that pass
// p's filters other than the payload, examining at most filterScan jobs.
// It returns the cursor to go on from: the last id kept when one more
// passes, the last id examined when it stopped at the bound, or "" when
// no job is left. Call with s.mu held.
func (s *Store) scanFiltered(q *queueState, p *store.ListJobsParams, n int, keep func(*job)) (string, error) {
	after, examined, kept, last := p.After, 0, 0, ""
	for {
		batch := min(256, filterScan-examined)
		ids, err := s.pageIDs(q, p.State, after, batch)
		if err != nil {
			return "", err
		}
		more := len(ids) > batch
		if more {
			ids = ids[:batch]
		}
		for _, id := range ids {
			j, err := s.indexedJob(id, "state")
			if err != nil {
				return "", err
			}
			examined++
			if !matches(&j.rec, p) {
				continue
			}
			if kept == n {
				// One more passes: there is a next page.
				return last, nil
			}
			keep(j)
			kept, last = kept+1, id
		}
		if !more {
			return "", nil
		}
		after = ids[len(ids)-1]
		if examined >= filterScan {
			return after, nil
		}
	}
}

// payloadScan bounds the payloads one ListJobs with a payload filter
// reads: the jobs that pass its other filters are read from disk in
// batches of this many, one batch per call.
const payloadScan = 500

// listByPayload is ListJobs with a payload filter: under the read lock it
// picks up to payloadScan jobs that pass the other filters, then, with the
// lock released, reads their payloads from a snapshot and keeps those
// whose field matches. A page may so hold fewer than p.Limit jobs and
// still have a cursor.
func (s *Store) listByPayload(p *store.ListJobsParams) ([]*store.Record, string, error) {
	s.mu.RLock()
	if err := s.usable(); err != nil {
		s.mu.RUnlock()
		return nil, "", err
	}
	q := s.x.queues[p.Queue]
	if q == nil {
		s.mu.RUnlock()
		return []*store.Record{}, "", nil
	}
	var (
		cands []*store.Record
		loads []bodyLoad
	)
	next, err := s.scanFiltered(q, p, max(p.Limit, payloadScan), func(j *job) {
		rec := j.rec.Clone()
		cands = append(cands, rec)
		if j.hasPayload {
			loads = append(loads, bodyLoad{j: j, rec: rec, payload: true})
		}
	})
	if err != nil {
		s.mu.RUnlock()
		return nil, "", err
	}
	a := after{barrier: s.applied}
	if len(loads) > 0 {
		a.loads, a.snap = loads, s.snapshot()
	}
	s.mu.RUnlock()
	if err := s.finish(&a); err != nil {
		return nil, "", err
	}
	recs := []*store.Record{}
	for _, rec := range cands {
		ok := rec.Payload != nil && store.PayloadEquals(rec.Payload, p.PayloadField, []byte(p.PayloadValue))
		rec.Payload = nil
		if !ok {
			continue
		}
		if len(recs) == p.Limit {
			return recs, recs[len(recs)-1].ID, nil
		}
		recs = append(recs, rec)
	}
	return recs, next, nil
}

// matches applies p's filters (store.ListJobsParams.Matches) to a meta.
func matches(m *meta, p *store.ListJobsParams) bool {
	if p.Type != "" && m.Type != p.Type || p.OrderingKey != "" && m.orderingKey() != p.OrderingKey {
		return false
	}
	if p.Tag == "" {
		return true
	}
	return m.rare != nil && slices.Contains(m.rare.Tags, p.Tag)
}

// pageIDs returns, in order, up to limit+1 ids of q's jobs in state st
// (every state if empty) greater than after: the extra one tells whether
// there is a next page. Call with s.mu held.
func (s *Store) pageIDs(q *queueState, st spool.State, after string, limit int) ([]string, error) {
	// Up to limit+1 ids from each state asked for (in memory for the
	// states not terminal, on disk for the others), merged.
	var ids []string
	for _, s2 := range spool.States {
		if st != "" && s2 != st {
			continue
		}
		if !s2.Terminal() {
			n := 0
			q.byState[s2].AscendGreaterOrEqual(after, func(id string) bool {
				if id != after {
					ids = append(ids, id)
					n++
				}
				return n <= limit
			})
			continue
		}
		if *q.cold.of(s2) == 0 {
			continue
		}
		more, err := s.coldIDs(q.name, s2, after, limit+1)
		if err != nil {
			return nil, err
		}
		ids = append(ids, more...)
	}
	slices.Sort(ids)
	if len(ids) > limit+1 {
		ids = ids[:limit+1]
	}
	return ids, nil
}

// ExpiredLeases returns up to limit active jobs whose lease expired at or
// before now, oldest expiry first, with their tokens and without payload
// and result.
func (s *Store) ExpiredLeases(ctx context.Context, now time.Time, limit int) ([]*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, spool.Invalidf("expired leases limit must be positive, got %d", limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	cutoff := nanos(now)
	recs := []*store.Record{}
	s.x.active.Ascend(func(it timeItem) bool {
		if it.t > cutoff {
			return false
		}
		recs = append(recs, s.x.jobs[it.id].rec.Clone())
		return len(recs) < limit
	})
	return recs, nil
}

// Queue returns one queue, or spool.ErrNotFound if it was never used.
func (s *Store) Queue(ctx context.Context, name string) (*store.QueueRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	q := s.x.queues[name]
	if q == nil {
		return nil, spool.NotFoundf("queue %q not found", name)
	}
	return s.queueRecord(q), nil
}

// Usage counts the queues and the jobs not yet finished (all in memory).
func (s *Store) Usage(ctx context.Context) (store.Usage, error) {
	if err := ctx.Err(); err != nil {
		return store.Usage{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return store.Usage{}, err
	}
	return store.Usage{Queues: int64(len(s.x.queues)), Unfinished: int64(len(s.x.jobs)), PayloadBytes: s.x.payloadBytes}, nil
}

// Queues lists every queue that was ever used, by name.
func (s *Store) Queues(ctx context.Context) ([]*store.QueueRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	out := make([]*store.QueueRecord, 0, len(s.x.queues))
	for _, q := range s.x.queues {
		out = append(out, s.queueRecord(q))
	}
	slices.SortFunc(out, func(a, b *store.QueueRecord) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// queueRecord builds the answer for q. Counts has an entry for every state.
func (s *Store) queueRecord(q *queueState) *store.QueueRecord {
	r := &store.QueueRecord{
		Name:   q.name,
		Config: cloneQueueConfig(q.cfg),
		Counts: make(map[spool.State]int64, len(spool.States)),
	}
	for _, st := range spool.States {
		r.Counts[st] = q.count(st)
	}
	if it, ok := q.readySince.Min(); ok {
		j := s.x.jobs[it.id]
		r.OldestReady = wall(valueOr(j.rec.ReadyAt, j.rec.CreatedAt))
	}
	return r
}
