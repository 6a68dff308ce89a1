package postgres

import (
	"context"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

var (
	lookupSQL = `SELECT ` + cols("", false) + ` FROM spool_jobs WHERE id = ANY($1::text[])`
	// waitingChildrenSQL uses spool_jobs_waiting_parents, a GIN index on
	// depends_on of waiting jobs only.
	waitingChildrenSQL = `SELECT ` + cols("", false) + ` FROM spool_jobs
WHERE state = 'waiting' AND depends_on && $1::text[] AND id > $2 ORDER BY id LIMIT $3`
)

// Lookup returns the jobs among ids that exist, without payload and result.
func (s *Store) Lookup(ctx context.Context, ids []string) ([]*store.Record, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return []*store.Record{}, nil
	}
	recs, err := collect(s.pool.Query(ctx, lookupSQL, ids))
	if err != nil {
		return nil, interpretError("looking up jobs", err)
	}
	return recs, nil
}

// WaitingChildren returns up to limit waiting jobs that depend on any of
// parents.
func (s *Store) WaitingChildren(ctx context.Context, parents []string, after string, limit int) ([]*store.Record, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, spool.Invalidf("waiting children limit must be positive, got %d", limit)
	}
	if len(parents) == 0 {
		return []*store.Record{}, nil
	}
	recs, err := collect(s.pool.Query(ctx, waitingChildrenSQL, parents, after, limit))
	if err != nil {
		return nil, interpretError("finding waiting children", err)
	}
	return recs, nil
}
