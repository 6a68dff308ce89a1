package postgres

import (
	"context"
	"fmt"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// deleteSQL deletes the finished jobs among ($1 ids, $2 revs) whose rev is
// the one given; their idempotency keys go with their rows.
const deleteSQL = `
DELETE FROM spool_jobs j
USING unnest($1::text[], $2::bigint[]) AS d(id, rev)
WHERE j.id = d.id AND j.rev = d.rev AND j.state IN ('succeeded', 'dead', 'cancelled')
RETURNING j.id`

// Delete deletes finished jobs, each on its own, in one statement.
func (s *Store) Delete(ctx context.Context, p store.DeleteParams) ([]error, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	errs := make([]error, len(p.Jobs))
	if len(p.Jobs) == 0 {
		return errs, nil
	}
	ids := make([]string, len(p.Jobs))
	revs := make([]int64, len(p.Jobs))
	for i, j := range p.Jobs {
		ids[i], revs[i] = j.ID, int64(j.Rev)
	}
	deleted := map[string]bool{}
	err := retry(ctx, func() error {
		clear(deleted)
		rows, err := s.pool.Query(ctx, deleteSQL, ids, revs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			deleted[id] = true
		}
		return rows.Err()
	})
	if err != nil {
		return nil, interpretError("deleting jobs", err)
	}
	// Tell apart the jobs that are gone from those that changed.
	var rest []string
	for _, id := range ids {
		if !deleted[id] {
			rest = append(rest, id)
		}
	}
	there := map[string]bool{}
	if len(rest) > 0 {
		rows, err := s.pool.Query(ctx, `SELECT id FROM spool_jobs WHERE id = ANY($1::text[])`, rest)
		if err == nil {
			for rows.Next() {
				var id string
				if err = rows.Scan(&id); err != nil {
					break
				}
				there[id] = true
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		if err != nil {
			return nil, interpretError("deleting jobs", err)
		}
	}
	for i, id := range ids {
		switch {
		case deleted[id]:
			// A job named twice is deleted once; the second is gone.
			delete(deleted, id)
		case there[id]:
			errs[i] = spool.Conflictf("job %q changed since revision %d, or is not finished", id, revs[i])
		default:
			errs[i] = spool.NotFoundf("job %q not found", id)
		}
	}
	return errs, nil
}

// DeleteQueue forgets a queue that holds no job. A job inserted into the
// queue at the same moment by a transaction not yet committed is not seen:
// its queue row then comes back with the job's next change of state.
func (s *Store) DeleteQueue(ctx context.Context, name string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	var gone, exists bool
	err := retry(ctx, func() error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		tag, err := tx.Exec(ctx, `DELETE FROM spool_queues WHERE name = $1
			AND NOT EXISTS (SELECT 1 FROM spool_jobs WHERE queue = $1)`, name)
		if err != nil {
			return err
		}
		gone = tag.RowsAffected() == 1
		if !gone {
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM spool_queues WHERE name = $1)`, name).Scan(&exists); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}
		// Counters at zero only: a counter a concurrent insert is
		// raising is kept (the row is re-checked once its lock is free).
		if _, err := tx.Exec(ctx, `DELETE FROM spool_queue_counts WHERE queue = $1 AND n = 0 AND bytes = 0`, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM spool_queue_buckets WHERE queue = $1`, name); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return interpretError(fmt.Sprintf("deleting queue %q", name), err)
	}
	switch {
	case gone:
		s.sender.add(nil, []string{name}, nil)
		return nil
	case exists:
		return spool.Conflictf("queue %q still holds jobs", name)
	default:
		return spool.NotFoundf("queue %q not found", name)
	}
}
