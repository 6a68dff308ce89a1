package auth

import (
	"sync"
	"time"
)

// FailureLimiter counts failed authentications per client address and
// refuses an address that failed too often, until its window ends: keys
// cannot be guessed quickly, and a client with a wrong key is told to slow
// down.
type FailureLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu sync.Mutex
	m  map[string]*failures
}

type failures struct {
	n     int
	start time.Time
}

// maxTracked bounds the addresses remembered; beyond it, windows that
// ended are forgotten, and if none has, the oldest state is dropped whole.
const maxTracked = 100_000

// NewFailureLimiter allows max failures per address per window.
func NewFailureLimiter(max int, window time.Duration, now func() time.Time) *FailureLimiter {
	if now == nil {
		now = time.Now
	}
	return &FailureLimiter{max: max, window: window, now: now, m: make(map[string]*failures)}
}

// Blocked reports whether addr must wait, and how long.
func (l *FailureLimiter) Blocked(addr string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[addr]
	if f == nil {
		return 0, false
	}
	end := f.start.Add(l.window)
	if !now.Before(end) {
		delete(l.m, addr)
		return 0, false
	}
	if f.n < l.max {
		return 0, false
	}
	return end.Sub(now), true
}

// Fail counts a failure of addr.
func (l *FailureLimiter) Fail(addr string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[addr]
	if f == nil || !now.Before(f.start.Add(l.window)) {
		if len(l.m) >= maxTracked {
			for a, g := range l.m {
				if !now.Before(g.start.Add(l.window)) {
					delete(l.m, a)
				}
			}
			if len(l.m) >= maxTracked {
				clear(l.m)
			}
		}
		f = &failures{start: now}
		l.m[addr] = f
	}
	f.n++
}
