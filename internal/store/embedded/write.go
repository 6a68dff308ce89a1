package embedded

import (
	"context"
	"crypto/rand"
	"math"
	"slices"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Insert stores new jobs, all or none (see store.InsertParams).
func (s *Store) Insert(ctx context.Context, p store.InsertParams) ([]store.InsertResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, r := range p.Jobs {
		if err := store.CheckRecord(r); err != nil {
			return nil, spool.Invalidf("job %d of the insert: %v", i, err)
		}
	}
	if len(p.Jobs) == 0 {
		return []store.InsertResult{}, nil
	}
	res, a, err := s.insert(p)
	if err != nil {
		return nil, err
	}
	if err := s.finish(&a); err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Store) insert(p store.InsertParams) (res []store.InsertResult, a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, a, err
	}

	// Plan without touching anything: which elements are duplicates (of a
	// stored job or of an earlier element) and how many jobs each queue
	// gains, so that a full queue refuses the whole insert.
	n := len(p.Jobs)
	existing := make([]*job, n)
	dupOf := make([]int, n)
	first := make(map[idemKey]int)
	// Ids that only grow (the engine's: UUIDv7) cannot repeat; a map of
	// the ids seen is built only when one does not.
	var ids map[string]struct{}
	lastID := ""
	gain := make(map[string]int64)
	var order []string
	for i, r := range p.Jobs {
		dupOf[i] = -1
		if r.IdempotencyKey != "" {
			k := idemKey{r.Queue, r.IdempotencyKey}
			ej, err := s.idemJob(nil, k)
			if err != nil {
				return nil, a, err
			}
			if ej != nil {
				existing[i] = ej
				continue
			}
			if f, ok := first[k]; ok {
				dupOf[i] = f
				continue
			}
			first[k] = i
		}
		if ej, err := s.job(nil, r.ID); err != nil || ej != nil {
			if err == nil {
				err = spool.Conflictf("job %q already exists", r.ID)
			}
			return nil, a, err
		}
		if ids == nil && r.ID <= lastID {
			ids = make(map[string]struct{}, n)
			for k, q := range p.Jobs[:i] {
				if existing[k] == nil && dupOf[k] < 0 {
					ids[q.ID] = struct{}{}
				}
			}
		}
		if ids != nil {
			if _, ok := ids[r.ID]; ok {
				return nil, a, spool.Invalidf("job id %q appears twice in one insert", r.ID)
			}
			ids[r.ID] = struct{}{}
		}
		lastID = r.ID
		if !r.State.Terminal() {
			if _, ok := gain[r.Queue]; !ok {
				order = append(order, r.Queue)
			}
			gain[r.Queue]++
		}
	}
	for _, q := range order {
		limit, ok := p.MaxDepth[q]
		if !ok {
			continue
		}
		if depth := s.x.depth(q); depth+gain[q] > limit {
			return nil, a, &spool.QueueFullError{Queue: q, Depth: depth, MaxDepth: limit}
		}
	}

	res = make([]store.InsertResult, n)
	t := s.begin()
	var times timeCopier
	for i, r := range p.Jobs {
		if existing[i] != nil || dupOf[i] >= 0 {
			continue
		}
		res[i] = store.InsertResult{Record: s.putNew(t, r, &times)}
	}
	for i := range p.Jobs {
		switch {
		case dupOf[i] >= 0:
			res[i] = store.InsertResult{Record: res[dupOf[i]].Record.Clone(), Existing: true}
		case existing[i] != nil:
			out := existing[i].rec.Clone()
			res[i] = store.InsertResult{Record: out, Existing: true}
			a.loads = append(a.loads, bodyLoad{j: existing[i], rec: out, payload: true, result: true})
		}
	}
	if len(t.undo) > 0 {
		if a.commit, err = s.apply(t, "inserting jobs"); err != nil {
			return nil, a, err
		}
	} else {
		t.rollback()
		// Nothing to write, but the duplicates found may rest on writes
		// that are applied and not yet synced: wait for them.
		a.barrier = s.applied
	}
	if len(a.loads) > 0 {
		a.snap = s.snapshot()
	}
	return res, a, nil
}

// putNew adds a new job to the write in progress, next in insert order,
// and returns it as stored, with payload and result: r itself, with Rev
// and Token set, as the caller's records are its own (store.InsertParams)
// and the indexes keep a deep copy (times copies its times; nil: a copier
// of its own). Called with s.mu held.
func (s *Store) putNew(t *txn, r *store.Record, times *timeCopier) *store.Record {
	r.Rev, r.Token = 1, ""
	j := &job{
		rec:          newMeta(r, times),
		seq:          s.nextSeq,
		hasPayload:   r.Payload != nil,
		hasResult:    r.Result != nil,
		payloadBytes: uint32(min(len(r.Payload), math.MaxUint32)),
	}
	s.nextSeq++
	t.put(nil, j)
	t.setJob(j)
	if j.hasPayload {
		t.setBody(prefixPayload, r.ID, r.Payload)
	}
	if j.hasResult {
		t.setBody(prefixResult, r.ID, r.Result)
	}
	return r
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// Lease claims up to p.Max ready jobs (see store.LeaseParams).
func (s *Store) Lease(ctx context.Context, p store.LeaseParams) ([]*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.Max <= 0 {
		return nil, spool.Invalidf("lease max must be positive, got %d", p.Max)
	}
	if p.NewToken == nil {
		p.NewToken = rand.Text
	}
	recs, a, err := s.lease(p)
	if err != nil {
		return nil, err
	}
	// The answer waits for every write the lease saw (the jobs' inserts,
	// say) to be synced, but not for the lease's own write: that is synced
	// in the background, by the next group commit. A crash before it
	// undoes the lease, and the jobs are ready again when the store
	// reopens: delivered again, as at-least-once delivery allows, instead
	// of waiting for their leases to lapse. Any later write (an ack of
	// these jobs included) is synced after it, in WAL order.
	if c := a.commit; c != nil {
		a.commit, a.barrier = nil, c.seq-1
		defer func() { go func() { _ = s.await(c) }() }()
	}
	if err := s.finish(&a); err != nil {
		return nil, err
	}
	return recs, nil
}

func (s *Store) lease(p store.LeaseParams) (recs []*store.Record, a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, a, err
	}
	now := wall(p.Now)
	var picked []*job
	seen := make(map[string]bool, len(p.Queues))
	for _, name := range p.Queues {
		q := s.x.queues[name]
		if q == nil || seen[name] {
			continue
		}
		seen[name] = true
		want := p.Max - len(picked)
		lim, limited := p.Limits[name]
		if limited {
			want = s.allowed(q, lim, now, want)
		}
		n := 0
		if want > 0 {
			// A ready job whose run_at is still ahead is skipped, not
			// taken; the engine does not normally make such jobs ready.
			q.ready.Ascend(func(it readyItem) bool {
				j := s.x.jobs[it.id]
				if !wall(j.rec.RunAt).After(now) {
					picked = append(picked, j)
					n++
				}
				return n < want
			})
		}
		if limited {
			s.took(q, lim, now, n, p.Throttled)
		}
		if len(picked) >= p.Max {
			break
		}
	}
	recs = make([]*store.Record, 0, len(picked))
	if len(picked) == 0 {
		return recs, a, nil
	}
	t := s.begin()
	started, expires := p.Now, p.ExpiresAt // shared by the jobs: never written through
	for _, old := range picked {
		nj := *old
		nj.rec.State = spool.StateActive
		nj.rec.Token = p.NewToken()
		nj.rec.Attempt++
		nj.rec.Worker = p.Worker
		nj.rec.StartedAt = &started
		nj.rec.LeaseExpiresAt = &expires
		nj.rec.Rev++
		t.put(old, &nj)
		t.setJob(&nj)
		out := nj.rec.Clone()
		recs = append(recs, out)
		a.loads = append(a.loads, bodyLoad{j: &nj, rec: out, payload: true, result: true})
	}
	if a.commit, err = s.apply(t, "leasing jobs"); err != nil {
		return nil, a, err
	}
	a.snap = s.snapshot()
	return recs, a, nil
}

// Update applies compare-and-set changes, each on its own, in one batch.
// The returned records carry payload and result as stored.
func (s *Store) Update(ctx context.Context, changes []store.Change) ([]*store.Record, []error, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for i, c := range changes {
		if err := store.CheckRecord(c.Record); err != nil {
			return nil, nil, spool.Invalidf("change %d of the update: %v", i, err)
		}
		for _, r := range c.Then {
			if err := store.CheckRecord(r); err != nil {
				return nil, nil, spool.Invalidf("a job to store with change %d: %v", i, err)
			}
		}
	}
	recs, errs, a, err := s.update(changes)
	if err != nil {
		return nil, nil, err
	}
	if err := s.finish(&a); err != nil {
		return nil, nil, err
	}
	return recs, errs, nil
}

func (s *Store) update(changes []store.Change) (recs []*store.Record, errs []error, a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, nil, a, err
	}
	recs = make([]*store.Record, len(changes))
	errs = make([]error, len(changes))
	t := s.begin()
	var times timeCopier
	for i, c := range changes {
		r := c.Record
		old, err := s.job(t, r.ID)
		if err != nil {
			t.rollback()
			return nil, nil, a, err
		}
		if old == nil {
			errs[i] = spool.NotFoundf("job %q not found", r.ID)
			continue
		}
		if r.Rev != old.rec.Rev {
			errs[i] = spool.Conflictf("job %q changed since revision %d (now %d)", r.ID, r.Rev, old.rec.Rev)
			continue
		}
		if r.IdempotencyKey != "" {
			other, err := s.idemJob(t, idemKey{r.Queue, r.IdempotencyKey})
			if err != nil {
				t.rollback()
				return nil, nil, a, err
			}
			if other != nil && other.rec.ID != r.ID {
				errs[i] = spool.Conflictf("idempotency key %q of queue %q already names job %q", r.IdempotencyKey, r.Queue, other.rec.ID)
				continue
			}
		}
		nj := &job{
			rec:          newMeta(r, &times),
			seq:          old.seq,
			hasPayload:   old.hasPayload,
			hasResult:    old.hasResult || r.Result != nil,
			payloadBytes: old.payloadBytes,
		}
		nj.rec.Rev = old.rec.Rev + 1
		if cold(old) && !cold(nj) {
			// A finished job put back goes behind the jobs of its
			// priority, as a new one would: Open does not read finished
			// jobs, so their sequence numbers may have been given again.
			nj.seq = s.nextSeq
			s.nextSeq++
		}
		t.put(old, nj)
		t.setJob(nj)
		if err := s.putThen(t, c.Then); err != nil {
			t.rollback()
			return nil, nil, a, err
		}
		out := nj.rec.Clone()
		load := bodyLoad{j: nj, rec: out, payload: true, result: true}
		if r.Result != nil {
			t.setBody(prefixResult, r.ID, r.Result)
			if !c.NoBodies {
				out.Result = cloneBytes(r.Result)
			}
			load.result = false
		}
		recs[i] = out
		if !c.NoBodies {
			a.loads = append(a.loads, load)
		}
	}
	if len(t.undo) == 0 {
		t.rollback()
		return recs, errs, a, nil
	}
	if a.commit, err = s.apply(t, "updating jobs"); err != nil {
		return nil, nil, a, err
	}
	if len(a.loads) > 0 {
		a.snap = s.snapshot()
	}
	return recs, errs, a, nil
}

// PromoteDue makes up to limit scheduled jobs with run_at <= now ready,
// earliest run_at first, and returns the queues that received jobs, by
// name.
func (s *Store) PromoteDue(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, spool.Invalidf("promote limit must be positive, got %d", limit)
	}
	queues, a, err := s.promoteDue(now, limit)
	if err != nil {
		return nil, err
	}
	if err := s.finish(&a); err != nil {
		return nil, err
	}
	return queues, nil
}

func (s *Store) promoteDue(now time.Time, limit int) (queues []string, a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, a, err
	}
	cutoff := nanos(now)
	var due []*job
	s.x.scheduled.Ascend(func(it timeItem) bool {
		if it.t > cutoff {
			return false
		}
		due = append(due, s.x.jobs[it.id])
		return len(due) < limit
	})
	queues = []string{}
	if len(due) == 0 {
		return queues, a, nil
	}
	t := s.begin()
	readyAt := now // shared by the jobs: never written through
	for _, old := range due {
		nj := *old
		nj.rec.State = spool.StateReady
		nj.rec.ReadyAt = &readyAt
		nj.rec.Rev++
		t.put(old, &nj)
		t.setJob(&nj)
		if !slices.Contains(queues, nj.rec.Queue) {
			queues = append(queues, nj.rec.Queue)
		}
	}
	if a.commit, err = s.apply(t, "promoting due jobs"); err != nil {
		return nil, a, err
	}
	slices.Sort(queues)
	return queues, a, nil
}

// Purge deletes up to limit terminal jobs of queue finished before before,
// oldest first, with their payloads, results and idempotency keys.
func (s *Store) Purge(ctx context.Context, queue string, before time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, spool.Invalidf("purge limit must be positive, got %d", limit)
	}
	n, a, err := s.purge(queue, before, limit)
	if err != nil {
		return 0, err
	}
	if err := s.finish(&a); err != nil {
		return 0, err
	}
	return n, nil
}

func (s *Store) purge(queue string, before time.Time, limit int) (n int, a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, a, err
	}
	if s.x.queues[queue] == nil {
		return 0, a, nil
	}
	ids, err := s.finishedBefore(queue, before, limit)
	if err != nil || len(ids) == 0 {
		return 0, a, err
	}
	t := s.begin()
	for _, id := range ids {
		j, err := s.indexedJob(id, "purge")
		if err != nil {
			t.rollback()
			return 0, a, err
		}
		t.put(j, nil)
		if j.hasPayload {
			t.delete(payloadKey(j.rec.ID))
		}
		if j.hasResult {
			t.delete(resultKey(j.rec.ID))
		}
	}
	if a.commit, err = s.apply(t, "purging jobs"); err != nil {
		return 0, a, err
	}
	return len(ids), a, nil
}

// SetQueueConfig replaces a queue's overrides, creating the queue.
func (s *Store) SetQueueConfig(ctx context.Context, name string, cfg spool.QueueConfig) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if name == "" {
		return spool.Invalidf("queue name is empty")
	}
	cfg = cloneQueueConfig(cfg)
	enc, err := encodeQueueConfig(name, &cfg)
	if err != nil {
		return err
	}
	a, err := s.setQueueConfig(name, cfg, enc)
	if err != nil {
		return err
	}
	return s.finish(&a)
}

func (s *Store) setQueueConfig(name string, cfg spool.QueueConfig, enc []byte) (a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return a, err
	}
	t := s.begin()
	t.set(queueKey(name), enc)
	if a.commit, err = s.apply(t, "setting queue config"); err != nil {
		return a, err
	}
	// Applied: now change memory, still under the mutex.
	s.queue(name).cfg = cfg
	return a, nil
}
