package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// scheduleKey keys schedules: s/<name> → the JSON of a
// store.ScheduleRecord (rev included). Schedules have no in-memory index:
// they are few, and read from Pebble under the store's mutex.
func scheduleKey(name string) []byte { return key(prefixSchedule, name) }

// scheduleValue is the stored form of a schedule.
type scheduleValue struct {
	spool.Schedule
	Rev uint64 `json:"rev"`
}

func encodeSchedule(r *store.ScheduleRecord) ([]byte, error) {
	b, err := json.Marshal(scheduleValue{Schedule: r.Schedule, Rev: r.Rev})
	if err != nil {
		return nil, spool.Invalidf("schedule %q cannot be stored: %v", r.Name, err)
	}
	return b, nil
}

func decodeSchedule(name string, b []byte) (*store.ScheduleRecord, error) {
	var v scheduleValue
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("embedded store: decoding schedule %q: %w", name, err)
	}
	return &store.ScheduleRecord{Schedule: v.Schedule, Rev: v.Rev}, nil
}

// readSchedule reads a schedule from Pebble (nil if there is none). Call
// with s.mu held.
func (s *Store) readSchedule(name string) (*store.ScheduleRecord, error) {
	v, closer, err := s.db.Get(scheduleKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, translate("reading schedule", err)
	}
	defer func() { _ = closer.Close() }()
	return decodeSchedule(name, v)
}

// PutSchedule creates or replaces a schedule (compare-and-set on Rev).
func (s *Store) PutSchedule(ctx context.Context, rec *store.ScheduleRecord) (*store.ScheduleRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rec == nil || rec.Name == "" {
		return nil, spool.Invalidf("a schedule needs a name")
	}
	out, a, err := s.putSchedule(rec)
	if err != nil {
		return nil, err
	}
	if err := s.finish(&a); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) putSchedule(rec *store.ScheduleRecord) (out *store.ScheduleRecord, a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, a, err
	}
	cur, err := s.readSchedule(rec.Name)
	if err != nil {
		return nil, a, err
	}
	var rev uint64
	if cur != nil {
		rev = cur.Rev
	}
	if rec.Rev != rev {
		return nil, a, spool.Conflictf("schedule %q changed meanwhile (revision %d, not %d)", rec.Name, rev, rec.Rev)
	}
	out = rec.Clone()
	out.Rev = rev + 1
	enc, err := encodeSchedule(out)
	if err != nil {
		return nil, a, err
	}
	t := s.begin()
	t.set(scheduleKey(rec.Name), enc)
	a.commit, err = s.apply(t, "storing schedule")
	if err != nil {
		return nil, a, err
	}
	return out, a, nil
}

// GetSchedule returns one schedule.
func (s *Store) GetSchedule(ctx context.Context, name string) (*store.ScheduleRecord, error) {
	return getOne(ctx, s, func() (*store.ScheduleRecord, error) { return s.readSchedule(name) },
		func() error { return spool.NotFoundf("no schedule named %q", name) })
}

// ListSchedules returns every schedule by name.
func (s *Store) ListSchedules(ctx context.Context) ([]*store.ScheduleRecord, error) {
	return listAll(ctx, s, prefixSchedule, decodeSchedule)
}

// DeleteSchedule removes a schedule.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a, err := s.deleteSchedule(name)
	if err != nil {
		return err
	}
	return s.finish(&a)
}

func (s *Store) deleteSchedule(name string) (a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return a, err
	}
	cur, err := s.readSchedule(name)
	if err != nil {
		return a, err
	}
	if cur == nil {
		return a, spool.NotFoundf("no schedule named %q", name)
	}
	t := s.begin()
	t.delete(scheduleKey(name))
	a.commit, err = s.apply(t, "deleting schedule")
	return a, err
}

// FireSchedule makes one firing in one Pebble batch: the job (unless the
// queue is full), the schedule's counters and next_fire_at.
func (s *Store) FireSchedule(ctx context.Context, p store.FireParams) (*store.FireResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.Job != nil {
		if err := store.CheckRecord(p.Job); err != nil {
			return nil, spool.Invalidf("job of schedule %q: %v", p.Name, err)
		}
	}
	res, a, err := s.fireSchedule(p)
	if err != nil {
		return nil, err
	}
	if err := s.finish(&a); err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Store) fireSchedule(p store.FireParams) (res *store.FireResult, a after, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, a, err
	}
	cur, err := s.readSchedule(p.Name)
	if err != nil {
		return nil, a, err
	}
	if cur == nil {
		return nil, a, spool.NotFoundf("no schedule named %q", p.Name)
	}
	if cur.Rev != p.Rev {
		return nil, a, spool.Conflictf("schedule %q changed meanwhile (revision %d, not %d)", p.Name, cur.Rev, p.Rev)
	}
	res = &store.FireResult{}
	t := s.begin()
	jobID := ""
	if r := p.Job; r != nil {
		// The same checks and writes as Insert for one job: the
		// idempotency key, the id, max_depth.
		var existing, same *job
		if r.IdempotencyKey != "" {
			existing, err = s.idemJob(t, idemKey{r.Queue, r.IdempotencyKey})
		}
		if err == nil && existing == nil {
			same, err = s.job(t, r.ID)
		}
		if err != nil {
			t.rollback()
			return nil, a, err
		}
		switch {
		case existing != nil:
			out := existing.rec.Clone()
			res.Job, res.Existing = out, true
			jobID = out.ID
			a.loads = append(a.loads, bodyLoad{j: existing, rec: out, payload: true, result: true})
		case same != nil:
			t.rollback()
			return nil, a, spool.Conflictf("job %q already exists", r.ID)
		case p.MaxDepth > 0 && !r.State.Terminal() && s.x.depth(r.Queue)+1 > p.MaxDepth:
			res.Full = &spool.QueueFullError{Queue: r.Queue, Depth: s.x.depth(r.Queue), MaxDepth: p.MaxDepth}
		default:
			res.Job = s.putNew(t, r, nil)
			jobID = r.ID
		}
	}
	next := cur.Clone()
	store.ApplyFire(next, &p, jobID, res.Full != nil)
	enc, err := encodeSchedule(next)
	if err != nil {
		t.rollback()
		return nil, a, err
	}
	t.set(scheduleKey(p.Name), enc)
	if a.commit, err = s.apply(t, "firing schedule"); err != nil {
		return nil, a, err
	}
	if len(a.loads) > 0 {
		a.snap = s.snapshot()
	}
	res.Schedule = next
	return res, a, nil
}
