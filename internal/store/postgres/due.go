package postgres

import (
	"sync"
	"time"
)

// NextDue reports the earliest run_at of a scheduled job as this Store
// last saw it, for the engine's maintenance loop (which then sleeps until
// then instead of a whole maintenance interval). It costs no query: every
// PromoteDue reads the earliest run_at left in the same round trip (one
// probe of the spool_jobs_scheduled index), and this Store's own writes of
// scheduled jobs lower it at once. A job scheduled by another node since
// this Store's last PromoteDue is not seen here; that node promotes it on
// time, and this one at its next maintenance pass at the latest.
func (s *Store) NextDue() (time.Time, bool) { return s.due.get() }

// promoteRetryGap is the soonest NextDue answers after a PromoteDue that
// left due jobs behind: jobs another node is promoting (locked, skipped)
// and about to commit. It keeps the loop from spinning on them.
const promoteRetryGap = 5 * time.Millisecond

// dueCache is NextDue's answer.
type dueCache struct {
	mu sync.Mutex
	at time.Time // zero: no scheduled job known
	// lowered counts lower calls, so that a refresh racing a write of a
	// scheduled job keeps that job's time.
	lowered uint64
}

func (d *dueCache) get() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at, !d.at.IsZero()
}

// lower records a scheduled job this Store wrote.
func (d *dueCache) lower(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lowered++
	if d.at.IsZero() || t.Before(d.at) {
		d.at = t
	}
}

// mark returns the token refresh needs.
func (d *dueCache) mark() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lowered
}

// refresh replaces the cache with next (zero: no scheduled job), read at
// now by a statement that began after mark returned since.
func (d *dueCache) refresh(since uint64, next, now time.Time) {
	if !next.IsZero() && !next.After(now) {
		next = now.Add(promoteRetryGap)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lowered != since && !d.at.IsZero() && (next.IsZero() || d.at.Before(next)) {
		// A scheduled job was written meanwhile, perhaps after the read:
		// keep the earlier time (at worst a pass that finds nothing).
		return
	}
	d.at = next
}
