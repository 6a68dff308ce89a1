package engine

import (
	"math"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Flow control: per-queue concurrency and rate limits, and the wake-ups
// that ordering keys and limits need. The store enforces both atomically
// with each lease (store.LeaseParams.Limits, and the ordering-key rule of
// Store.Lease); the engine resolves the limits from the queue's config and
// makes long-polls look again when a limit may have let go: when the next
// token is due, when an active job of a limited queue stops being active,
// and when a job with an ordering key finishes (its key's next job may
// run).

// resolveFlow fills the flow-control fields of a resolved config: 0 is no
// cap; an unset burst is the rate rounded up, at least 1 (0 without rate).
func resolveFlow(r *spool.QueueConfig, over spool.QueueConfig) {
	r.Concurrency, r.Rate, r.Burst, r.TargetWait = ptr(0), ptr(0.0), ptr(0), ptr(spool.Duration(0))
	if over.TargetWait != nil {
		r.TargetWait = ptr(*over.TargetWait)
	}
	if over.Concurrency != nil {
		r.Concurrency = ptr(*over.Concurrency)
	}
	if over.Rate != nil {
		r.Rate = ptr(*over.Rate)
	}
	switch {
	case over.Burst != nil && *over.Burst > 0:
		r.Burst = ptr(*over.Burst)
	case *r.Rate > 0:
		r.Burst = ptr(max(1, int(math.Ceil(*r.Rate))))
	}
}

// patchFlow applies a PATCH's flow-control fields to the stored overrides;
// 0 clears a limit (the field is dropped).
func patchFlow(cur *spool.QueueConfig, patch spool.QueueConfig) {
	if v := patch.Concurrency; v != nil {
		cur.Concurrency = nil
		if *v > 0 {
			cur.Concurrency = ptr(*v)
		}
	}
	if v := patch.Rate; v != nil {
		cur.Rate = nil
		if *v > 0 {
			cur.Rate = ptr(*v)
		}
	}
	if v := patch.Burst; v != nil {
		cur.Burst = nil
		if *v > 0 {
			cur.Burst = ptr(*v)
		}
	}
	if v := patch.TargetWait; v != nil {
		cur.TargetWait = nil
		if *v > 0 {
			cur.TargetWait = ptr(*v)
		}
	}
}

// limitsOf returns the store limits of a resolved config, and whether it
// has any.
func limitsOf(qc spool.QueueConfig) (store.QueueLimits, bool) {
	var l store.QueueLimits
	if qc.Concurrency != nil {
		l.MaxActive = *qc.Concurrency
	}
	if qc.Rate != nil && *qc.Rate > 0 {
		l.Rate = *qc.Rate
		l.Burst = 1
		if qc.Burst != nil && *qc.Burst > 0 {
			l.Burst = *qc.Burst
		}
	}
	return l, l.MaxActive > 0 || l.Rate > 0
}

// limited reports whether a queue has a concurrency cap, from the cached
// config only (no store read: it runs after every state change).
func (e *Engine) concurrencyLimited(queue string) bool {
	e.cfgMu.Lock()
	c, ok := e.cfgTab[queue]
	e.cfgMu.Unlock()
	return ok && c.cfg.Concurrency != nil && *c.cfg.Concurrency > 0
}

// freed wakes the lease requests waiting on r's queue when r's change
// from prev may let another job start: r finished and held an ordering
// key, or r left active in a queue with a concurrency cap.
func (e *Engine) freed(prev spool.State, r *store.Record) {
	switch {
	case r.OrderingKey != "" && r.State.Terminal():
	case prev == spool.StateActive && r.State != spool.StateActive && e.concurrencyLimited(r.Queue):
	default:
		return
	}
	e.hub.queueReady(r.Queue)
}

// minRefillWait bounds how often a long-poll on a rate-limited queue looks
// again: a token due sooner is waited for this long.
const minRefillWait = time.Millisecond

// refillTimer wakes a long-poll when a rate-limited queue's next token is
// due. Its channel is nil (never ready) while unset.
type refillTimer struct {
	t *time.Timer
	c <-chan time.Time
}

// set arms the timer for at (as told by the engine's clock at now), or
// disarms it when at is zero.
func (r *refillTimer) set(at, now time.Time) {
	r.stop()
	if at.IsZero() {
		return
	}
	r.t = time.NewTimer(max(at.Sub(now), minRefillWait))
	r.c = r.t.C
}

func (r *refillTimer) stop() {
	if r.t != nil {
		r.t.Stop()
		r.t, r.c = nil, nil
	}
}
