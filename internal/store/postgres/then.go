package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/spoolq/spool/internal/store"
)

// insertThen stores, in the transaction tx, the follow-up jobs
// (store.Change.Then) of the changes that succeeded, skipping those whose
// (queue, idempotency key) is taken. It returns the jobs stored.
func (s *Store) insertThen(ctx context.Context, tx pgx.Tx, changes []store.Change, errs []error) ([]*store.Record, error) {
	var then []*store.Record
	for i, c := range changes {
		if errs[i] == nil {
			then = append(then, c.Then...)
		}
	}
	if len(then) == 0 {
		return nil, nil
	}
	params := newJobParams(len(then))
	for _, r := range then {
		if err := params.add(r, 1, "", true); err != nil {
			return nil, err
		}
	}
	args := append(params.args(), []string{}, []int64{}, false, s.admission.tickets, s.admission.maxFastGain)
	var inserted []string
	if err := tx.QueryRow(ctx, insertSQL, args...).Scan(&inserted, nil); err != nil {
		return nil, err
	}
	isNew := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		isNew[id] = true
	}
	var created []*store.Record
	for _, r := range then {
		if isNew[r.ID] {
			out := stored(r)
			out.Rev, out.Token = 1, ""
			created = append(created, out)
		}
	}
	return created, nil
}

// hasThen reports whether any change carries follow-up jobs.
func hasThen(changes []store.Change) bool {
	for _, c := range changes {
		if len(c.Then) > 0 {
			return true
		}
	}
	return false
}
