package embedded

import "time"

// NextDue reports the earliest run_at of a scheduled job, for the engine's
// maintenance loop: it then sleeps until that instant instead of a whole
// maintenance interval, so delayed jobs and retry backoffs become ready on
// time. It reads the in-memory tree of scheduled jobs (no disk access).
// The engine pokes its loop whenever it writes a scheduled job, so a job
// scheduled earlier than the instant the loop sleeps to is seen at once.
func (s *Store) NextDue() (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return time.Time{}, false
	}
	it, ok := s.x.scheduled.Min()
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, it.t), true
}
