package engine

import (
	"context"
	"sync"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Budget caps what the whole server holds, across every queue, so that no
// client can exhaust its memory or disk by creating queue after queue or
// filling every queue to its max_depth. 0 means no cap.
type Budget struct {
	// MaxQueues caps the number of queues: a new queue beyond it is
	// refused (spool.CodeTooManyQueues).
	MaxQueues int64
	// MaxJobs caps the jobs not yet finished across all queues (waiting,
	// scheduled, ready, active): more are refused with Retry-After
	// (spool.CodeServerFull).
	MaxJobs int64
	// MaxPayloadBytes caps the payload bytes of those jobs: more are
	// refused with Retry-After (spool.CodeStorageFull).
	MaxPayloadBytes int64
}

// DefaultUsageTTL is how long the engine reuses a reading of the store's
// usage for the budget (Config.UsageTTL).
const DefaultUsageTTL = time.Second

// usageCache is the latest reading of the store's usage, plus what this
// node admitted since (so that one node alone never overshoots a cap by
// more than its requests in flight). Finished jobs are seen at the next
// reading: the cache errs on the side of refusing.
type usageCache struct {
	mu sync.Mutex
	u  store.Usage
	at time.Time
	ok bool
}

// admitDisk refuses new work (enqueues, publishes) when the disk is below
// its free-space mark. It reads nothing else, so it comes first.
func (e *Engine) admitDisk() error {
	if err := e.cfg.DiskSpace.Check(); err != nil {
		e.m.refused(spool.CodeDiskFull)
		return err
	}
	return nil
}

// admitBudget refuses new work that would exceed the server-wide budget:
// jobs new jobs of bytes payload bytes, into queues of which newQueues do
// not exist yet. It is checked before anything is written, so a refusal
// stores nothing.
func (e *Engine) admitBudget(ctx context.Context, jobs int, bytes int64, newQueues int) error {
	b := e.cfg.Budget
	if b.MaxQueues <= 0 && b.MaxJobs <= 0 && b.MaxPayloadBytes <= 0 {
		return nil
	}
	u, err := e.usage(ctx)
	if err != nil {
		// The store does not answer: the write that follows will say so.
		e.log.Warn("reading the store's usage for the budget failed; admitting", "error", err)
		return nil
	}
	if b.MaxQueues > 0 && newQueues > 0 && u.Queues+int64(newQueues) > b.MaxQueues {
		e.m.refused(spool.CodeTooManyQueues)
		return &spool.BudgetError{Code: spool.CodeTooManyQueues, Used: u.Queues, Limit: b.MaxQueues, Adding: int64(newQueues)}
	}
	if b.MaxJobs > 0 && jobs > 0 && u.Unfinished+int64(jobs) > b.MaxJobs {
		e.m.refused(spool.CodeServerFull)
		return &spool.BudgetError{Code: spool.CodeServerFull, Used: u.Unfinished, Limit: b.MaxJobs, Adding: int64(jobs),
			RetryAfter: retryAfter(u.Unfinished, b.MaxJobs, jobs, e.totalDrainRate(ctx), rateWindow)}
	}
	if b.MaxPayloadBytes > 0 && bytes > 0 && u.PayloadBytes+bytes > b.MaxPayloadBytes {
		e.m.refused(spool.CodeStorageFull)
		// Jobs leave at the drain rate; by the average payload, that many
		// bytes a second.
		perSec := 0.0
		if u.Unfinished > 0 {
			perSec = e.totalDrainRate(ctx) * float64(u.PayloadBytes) / float64(u.Unfinished)
		}
		return &spool.BudgetError{Code: spool.CodeStorageFull, Used: u.PayloadBytes, Limit: b.MaxPayloadBytes, Adding: bytes,
			RetryAfter: retryAfter(u.PayloadBytes, b.MaxPayloadBytes, int(min(bytes, 1<<30)), perSec, rateWindow)}
	}
	return nil
}

// payloadBytes sums the payload lengths of requests.
func payloadBytes(reqs []spool.EnqueueRequest) int64 {
	var n int64
	for i := range reqs {
		n += int64(len(reqs[i].Payload))
	}
	return n
}

// usage returns the store's usage, read at most once per UsageTTL.
func (e *Engine) usage(ctx context.Context) (store.Usage, error) {
	c := &e.usageCache
	now := e.clock.Now()
	c.mu.Lock()
	if c.ok && now.Sub(c.at) < e.cfg.UsageTTL && now.Sub(c.at) >= 0 {
		u := c.u
		c.mu.Unlock()
		return u, nil
	}
	c.mu.Unlock()
	u, err := e.st.Usage(ctx)
	if err != nil {
		return store.Usage{}, err
	}
	c.mu.Lock()
	c.u, c.at, c.ok = u, now, true
	c.mu.Unlock()
	return u, nil
}

// admitted adds what an insert admitted to the cached usage.
func (e *Engine) admitted(jobs int, bytes int64, newQueues int) {
	c := &e.usageCache
	c.mu.Lock()
	c.u.Unfinished += int64(jobs)
	c.u.PayloadBytes += bytes
	c.u.Queues += int64(newQueues)
	c.mu.Unlock()
}

// Usage reads the store's usage now (for GET /v1/queues and /metrics),
// with the budget in force.
func (e *Engine) Usage(ctx context.Context) (store.Usage, Budget, error) {
	u, err := e.st.Usage(ctx)
	return u, e.cfg.Budget, err
}

// totalDrainRate is the rate at which the server finished jobs over the
// last minute, all queues together (jobs per second).
func (e *Engine) totalDrainRate(ctx context.Context) float64 {
	figs, err := e.minuteFigures(ctx, "")
	if err != nil {
		e.log.Warn("reading the throughput for Retry-After failed", "error", err)
		return 0
	}
	var sum float64
	for _, f := range figs {
		sum += f.Throughput
	}
	return sum
}
