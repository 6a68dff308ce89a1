package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Schedules live in spool_schedules (migration 5): name, rev, next_fire_at
// and the whole schedule as a JSON document.

func encodeScheduleDoc(r *store.ScheduleRecord) ([]byte, error) {
	b, err := json.Marshal(r.Schedule)
	if err != nil {
		return nil, spool.Invalidf("schedule %q cannot be stored: %v", r.Name, err)
	}
	return b, nil
}

func decodeScheduleDoc(name string, rev int64, doc []byte) (*store.ScheduleRecord, error) {
	rec := &store.ScheduleRecord{Rev: uint64(rev)}
	if err := json.Unmarshal(doc, &rec.Schedule); err != nil {
		return nil, fmt.Errorf("postgres store: decoding schedule %q: %w", name, err)
	}
	rec.Name = name
	return rec, nil
}

func nextFire(r *store.ScheduleRecord) *time.Time {
	if r.NextFireAt == nil {
		return nil
	}
	t := r.NextFireAt.UTC()
	return &t
}

// PutSchedule creates or replaces a schedule (compare-and-set on Rev).
func (s *Store) PutSchedule(ctx context.Context, rec *store.ScheduleRecord) (*store.ScheduleRecord, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if rec == nil || rec.Name == "" {
		return nil, spool.Invalidf("a schedule needs a name")
	}
	out := rec.Clone()
	out.Rev = rec.Rev + 1
	doc, err := encodeScheduleDoc(out)
	if err != nil {
		return nil, err
	}
	var tag pgconn.CommandTag
	err = retry(ctx, func() error {
		var err error
		if rec.Rev == 0 {
			tag, err = s.pool.Exec(ctx, `INSERT INTO spool_schedules (name, rev, next_fire_at, doc) VALUES ($1, 1, $2, $3)
				ON CONFLICT (name) DO NOTHING`, rec.Name, nextFire(out), doc)
		} else {
			tag, err = s.pool.Exec(ctx, `UPDATE spool_schedules SET rev = rev + 1, next_fire_at = $3, doc = $4
				WHERE name = $1 AND rev = $2`, rec.Name, int64(rec.Rev), nextFire(out), doc)
		}
		return err
	})
	if err != nil {
		return nil, interpretError(fmt.Sprintf("storing schedule %q", rec.Name), err)
	}
	if tag.RowsAffected() == 0 {
		return nil, spool.Conflictf("schedule %q changed meanwhile (not at revision %d)", rec.Name, rec.Rev)
	}
	return out, nil
}

// GetSchedule returns one schedule.
func (s *Store) GetSchedule(ctx context.Context, name string) (*store.ScheduleRecord, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	var (
		rev int64
		doc []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT rev, doc FROM spool_schedules WHERE name = $1`, name).Scan(&rev, &doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, spool.NotFoundf("no schedule named %q", name)
	}
	if err != nil {
		return nil, interpretError(fmt.Sprintf("reading schedule %q", name), err)
	}
	return decodeScheduleDoc(name, rev, doc)
}

// ListSchedules returns every schedule by name.
func (s *Store) ListSchedules(ctx context.Context) ([]*store.ScheduleRecord, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT name, rev, doc FROM spool_schedules ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, interpretError("listing schedules", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.ScheduleRecord, error) {
		var (
			name string
			rev  int64
			doc  []byte
		)
		if err := r.Scan(&name, &rev, &doc); err != nil {
			return nil, err
		}
		return decodeScheduleDoc(name, rev, doc)
	})
	if err != nil {
		return nil, interpretError("listing schedules", err)
	}
	return out, nil
}

// DeleteSchedule removes a schedule.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM spool_schedules WHERE name = $1`, name)
	if err != nil {
		return interpretError(fmt.Sprintf("deleting schedule %q", name), err)
	}
	if tag.RowsAffected() == 0 {
		return spool.NotFoundf("no schedule named %q", name)
	}
	return nil
}

// keyHolderSQL reads the job that holds an idempotency key.
var keyHolderSQL = `SELECT ` + cols("", true) + ` FROM spool_jobs WHERE queue = $1 AND idempotency_key = $2`

// FireSchedule makes one firing in one transaction: the schedule's row is
// locked and its rev checked (a node that lost the race for this firing
// finds another rev and does nothing), the job is inserted with Insert's
// statement (idempotency key and max_depth admission included, the
// admission taken exclusively: a firing is one job), and the row is
// rewritten with the new counters and next_fire_at.
func (s *Store) FireSchedule(ctx context.Context, p store.FireParams) (*store.FireResult, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	var args []any
	if r := p.Job; r != nil {
		if err := store.CheckRecord(r); err != nil {
			return nil, spool.Invalidf("job of schedule %q: %v", p.Name, err)
		}
		params := newJobParams(1)
		if err := params.add(r, 1, "", true); err != nil {
			return nil, err
		}
		limQueues, limits := []string{}, []int64{}
		if p.MaxDepth > 0 && !r.State.Terminal() {
			limQueues, limits = []string{r.Queue}, []int64{p.MaxDepth}
		}
		args = append(params.args(), limQueues, limits, true, s.admission.tickets, s.admission.maxFastGain)
	}
	var res *store.FireResult
	err := retry(ctx, func() error {
		res = &store.FireResult{}
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var (
				rev int64
				doc []byte
			)
			err := tx.QueryRow(ctx, `SELECT rev, doc FROM spool_schedules WHERE name = $1 FOR UPDATE`, p.Name).Scan(&rev, &doc)
			if errors.Is(err, pgx.ErrNoRows) {
				return spool.NotFoundf("no schedule named %q", p.Name)
			}
			if err != nil {
				return err
			}
			if uint64(rev) != p.Rev {
				return spool.Conflictf("schedule %q changed meanwhile (revision %d, not %d)", p.Name, rev, p.Rev)
			}
			cur, err := decodeScheduleDoc(p.Name, rev, doc)
			if err != nil {
				return err
			}
			jobID := ""
			if r := p.Job; r != nil {
				if jobID, err = s.fireJob(ctx, tx, r, args, res); err != nil {
					return err
				}
			}
			store.ApplyFire(cur, &p, jobID, res.Full != nil)
			doc, err = encodeScheduleDoc(cur)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE spool_schedules SET rev = $2, next_fire_at = $3, doc = $4 WHERE name = $1`,
				p.Name, int64(cur.Rev), nextFire(cur), doc); err != nil {
				return err
			}
			res.Schedule = cur
			return nil
		})
	})
	if err != nil {
		if errors.Is(err, spool.ErrNotFound) || errors.Is(err, spool.ErrConflict) || errors.Is(err, spool.ErrInvalid) {
			return nil, err
		}
		return nil, interpretError(fmt.Sprintf("firing schedule %q", p.Name), err)
	}
	if res.Job != nil && !res.Existing {
		s.written([]*store.Record{res.Job})
	}
	return res, nil
}

// fireJob inserts the job of a firing inside tx, under a savepoint: a full
// queue rolls back to it and is reported in res.Full. It returns the id of
// the firing's job ("" when the queue was full).
func (s *Store) fireJob(ctx context.Context, tx pgx.Tx, r *store.Record, args []any, res *store.FireResult) (string, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return "", err
	}
	var inserted []string
	err = sp.QueryRow(ctx, insertSQL, args...).Scan(&inserted, nil)
	if err != nil {
		_ = sp.Rollback(ctx)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == codeQueueFull {
			var qf *spool.QueueFullError
			if errors.As(queueFull(pe), &qf) {
				res.Full = qf
			} else {
				res.Full = &spool.QueueFullError{Queue: r.Queue}
			}
			return "", nil
		}
		return "", err
	}
	if err := sp.Commit(ctx); err != nil {
		return "", err
	}
	if len(inserted) == 1 {
		out := stored(r)
		out.Rev, out.Token = 1, ""
		res.Job = out
		return r.ID, nil
	}
	// The idempotency key already names a job: it is this firing's.
	ex, err := scanRecord(tx.QueryRow(ctx, keyHolderSQL, r.Queue, r.IdempotencyKey))
	if err != nil {
		return "", err
	}
	res.Job, res.Existing = ex, true
	return ex.ID, nil
}
