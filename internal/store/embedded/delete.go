package embedded

import (
	"context"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Delete deletes finished jobs with their payloads, results and
// idempotency keys, each on its own, in one synced batch.
func (s *Store) Delete(ctx context.Context, p store.DeleteParams) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	errs, a, err := s.delete(p)
	if err != nil {
		return nil, err
	}
	if err := s.finish(&a); err != nil {
		return nil, err
	}
	return errs, nil
}

func (s *Store) delete(p store.DeleteParams) (errs []error, a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, a, err
	}
	errs = make([]error, len(p.Jobs))
	t := s.begin()
	n := 0
	for i, jr := range p.Jobs {
		j, err := s.job(t, jr.ID)
		if err != nil {
			t.rollback()
			return nil, a, err
		}
		switch {
		case j == nil:
			errs[i] = spool.NotFoundf("job %q not found", jr.ID)
			continue
		case j.rec.Rev != jr.Rev:
			errs[i] = spool.Conflictf("job %q changed since revision %d (now %d)", jr.ID, jr.Rev, j.rec.Rev)
			continue
		case !cold(j):
			errs[i] = spool.Conflictf("job %q is %s; only finished jobs can be deleted", jr.ID, j.rec.State)
			continue
		}
		t.put(j, nil)
		if j.hasPayload {
			t.delete(payloadKey(j.rec.ID))
		}
		if j.hasResult {
			t.delete(resultKey(j.rec.ID))
		}
		n++
	}
	if n == 0 {
		t.rollback()
		a.barrier = s.applied
		return errs, a, nil
	}
	if a.commit, err = s.apply(t, "deleting jobs"); err != nil {
		return nil, a, err
	}
	return errs, a, nil
}

// DeleteQueue forgets a queue that holds no job.
func (s *Store) DeleteQueue(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a, err := s.deleteQueue(name)
	if err != nil {
		return err
	}
	return s.finish(&a)
}

func (s *Store) deleteQueue(name string) (a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return a, err
	}
	q := s.x.queues[name]
	if q == nil {
		return a, spool.NotFoundf("queue %q not found", name)
	}
	for _, st := range spool.States {
		if n := q.count(st); n > 0 {
			return a, spool.Conflictf("queue %q still holds %d %s jobs", name, n, st)
		}
	}
	t := s.begin()
	t.delete(queueKey(name))
	if a.commit, err = s.apply(t, "deleting a queue"); err != nil {
		return a, err
	}
	// Applied: now change memory, still under the mutex.
	delete(s.x.queues, name)
	delete(s.buckets, name)
	return a, nil
}
