package embedded

import (
	"github.com/spoolq/spool/internal/store"
)

// putThen adds the follow-up jobs of a successful change (store.Change.Then)
// to the write in progress. A job whose (queue, idempotency key) is taken,
// or whose id exists, is skipped. Called with s.mu held.
func (s *Store) putThen(t *txn, then []*store.Record) error {
	for _, r := range then {
		j, err := s.job(t, r.ID)
		if err != nil {
			return err
		}
		if j != nil {
			continue
		}
		if r.IdempotencyKey != "" {
			j, err := s.idemJob(t, idemKey{r.Queue, r.IdempotencyKey})
			if err != nil {
				return err
			}
			if j != nil {
				continue
			}
		}
		s.putNew(t, r, nil)
	}
	return nil
}
