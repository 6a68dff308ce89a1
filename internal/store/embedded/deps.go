package embedded

import (
	"context"
	"slices"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Lookup returns the jobs among ids that exist, without payload and result.
func (s *Store) Lookup(ctx context.Context, ids []string) ([]*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	recs := make([]*store.Record, 0, len(ids))
	for _, id := range ids {
		j, err := s.job(nil, id)
		if err != nil {
			return nil, err
		}
		if j != nil {
			recs = append(recs, j.rec.Clone())
		}
	}
	return recs, nil
}

// WaitingChildren returns a page of the waiting jobs that depend on any of
// parents, from the in-memory children index.
func (s *Store) WaitingChildren(ctx context.Context, parents []string, after string, limit int) ([]*store.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, spool.Invalidf("waiting children limit must be positive, got %d", limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	var found []string
	for _, p := range parents {
		for id := range s.x.children[p] {
			if id > after && !seen[id] {
				seen[id] = true
				found = append(found, id)
			}
		}
	}
	slices.Sort(found)
	if len(found) > limit {
		found = found[:limit]
	}
	recs := make([]*store.Record, len(found))
	for i, id := range found {
		recs[i] = s.x.jobs[id].rec.Clone()
	}
	return recs, nil
}

// addChild and removeChild keep index.children: parent id → the waiting
// jobs that name it in DependsOn.
func (x *index) addChild(j *job) {
	for _, p := range j.rec.dependsOn() {
		m := x.children[p]
		if m == nil {
			m = make(map[string]struct{})
			x.children[p] = m
		}
		m[j.rec.ID] = struct{}{}
	}
}

func (x *index) removeChild(j *job) {
	for _, p := range j.rec.dependsOn() {
		if m := x.children[p]; m != nil {
			delete(m, j.rec.ID)
			if len(m) == 0 {
				delete(x.children, p)
			}
		}
	}
}
