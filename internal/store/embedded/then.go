package embedded

import (
	"github.com/spoolq/spool/internal/store"
)

// putThen adds the follow-up jobs of a successful change (store.Change.Then)
// to the write in progress. A job whose (queue, idempotency key) is taken,
// or whose id exists, is skipped. Called with s.mu held.
func (s *Store) putThen(t *txn, then []*store.Record) {
	for _, r := range then {
		if _, ok := s.x.jobs[r.ID]; ok {
			continue
		}
		if r.IdempotencyKey != "" {
			if _, ok := s.x.idem[idemKey{r.Queue, r.IdempotencyKey}]; ok {
				continue
			}
		}
		s.putNew(t, r)
	}
}
