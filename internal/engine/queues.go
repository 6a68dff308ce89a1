package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Queues describes every queue.
func (e *Engine) Queues(ctx context.Context) ([]spool.QueueInfo, error) {
	qs, err := e.st.Queues(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing queues: %w", err)
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name })
	figs, err := e.minuteFigures(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]spool.QueueInfo, len(qs))
	for i, q := range qs {
		out[i] = e.info(q)
		setRates(&out[i], figs[q.Name])
	}
	return out, nil
}

// Queue describes one queue; a queue never used is spool.ErrNotFound.
func (e *Engine) Queue(ctx context.Context, name string) (*spool.QueueInfo, error) {
	if err := validateReadableQueue(name); err != nil {
		return nil, err
	}
	q, err := e.st.Queue(ctx, name)
	if err != nil {
		if errors.Is(err, spool.ErrNotFound) {
			return nil, spool.NotFoundf("no queue named %q (a queue exists once a job is enqueued to it or its config is set)", name)
		}
		return nil, fmt.Errorf("reading queue %q: %w", name, err)
	}
	figs, err := e.minuteFigures(ctx, name)
	if err != nil {
		return nil, err
	}
	info := e.info(q)
	setRates(&info, figs[name])
	return &info, nil
}

func (e *Engine) info(q *store.QueueRecord) spool.QueueInfo {
	now := e.clock.Now()
	counts := make(map[spool.State]int64, len(spool.States))
	for _, s := range spool.States {
		counts[s] = q.Counts[s]
	}
	info := spool.QueueInfo{
		Name:   q.Name,
		Config: e.resolve(q.Config),
		Counts: counts,
		Depth:  depthOf(counts),
	}
	if !q.OldestReady.IsZero() && counts[spool.StateReady] > 0 {
		if age := now.Sub(q.OldestReady); age > 0 {
			info.OldestReadyAge = spool.Duration(age)
		}
	}
	info.Busy = counts[spool.StateActive]
	return info
}

// setRates fills a queue's rates from its 1-minute window.
func setRates(info *spool.QueueInfo, w spool.WindowStats) {
	info.EnqueueRate = w.ArrivalRate
	info.CompleteRate = w.Throughput
	info.FailRate = w.FailureRate
	info.WaitP99 = spool.Duration(w.Wait.P99 * float64(time.Second))
}

// drainRate is a queue's throughput over the last minute, cluster-wide
// (0 when it cannot be read): what Retry-After divides by.
//
// A refused enqueue is answered fast and adds no load to a store that is
// already behind: the figure is read at most once per drainRateTTL per
// queue on this node, and refusals in between reuse it.
func (e *Engine) drainRate(ctx context.Context, queue string) float64 {
	now := e.clock.Now()
	e.drainMu.Lock()
	c, ok := e.drains[queue]
	e.drainMu.Unlock()
	if ok && now.Sub(c.at) < drainRateTTL && !now.Before(c.at) {
		return c.rate
	}
	figs, err := e.minuteFigures(ctx, queue)
	if err != nil {
		e.log.Warn("reading a queue's throughput for Retry-After failed", "queue", queue, "error", err)
		return 0
	}
	rate := figs[queue].Throughput
	e.drainMu.Lock()
	if e.drains == nil || len(e.drains) > maxDrainCache {
		e.drains = make(map[string]cachedRate)
	}
	e.drains[queue] = cachedRate{at: now, rate: rate}
	e.drainMu.Unlock()
	return rate
}

// drainRateTTL is how long a queue's throughput is reused for Retry-After.
const drainRateTTL = time.Second

// maxDrainCache bounds the cache of drain rates (it is emptied past it).
const maxDrainCache = 10_000

type cachedRate struct {
	at   time.Time
	rate float64
}

// PatchQueue changes the settings present in patch (creating the queue if
// it was never used) and returns the queue as it is now.
func (e *Engine) PatchQueue(ctx context.Context, name string, patch spool.QueueConfig) (*spool.QueueInfo, error) {
	if err := spool.ValidateQueueName(name); err != nil {
		return nil, err
	}
	if err := patch.Validate(); err != nil {
		return nil, err
	}
	var cur spool.QueueConfig
	q, err := e.st.Queue(ctx, name)
	switch {
	case err == nil:
		cur = q.Config
	case errors.Is(err, spool.ErrNotFound):
		if err := e.admitBudget(ctx, 0, 0, 1); err != nil {
			return nil, err
		}
		e.admitted(0, 0, 1)
	default:
		return nil, fmt.Errorf("reading queue %q: %w", name, err)
	}
	if patch.MaxDepth != nil {
		cur.MaxDepth = patch.MaxDepth
	}
	if patch.Retention != nil {
		cur.Retention = patch.Retention
	}
	if patch.Paused != nil {
		cur.Paused = patch.Paused
	}
	if patch.MaxAttempts != nil {
		cur.MaxAttempts = patch.MaxAttempts
	}
	patchFlow(&cur, patch)
	if v := patch.DeadLetterQueue; v != nil {
		if *v == name {
			return nil, spool.Invalidf("dead_letter_queue: queue %q cannot be its own dead-letter queue", name)
		}
		cur.DeadLetterQueue = nil
		if *v != "" {
			cur.DeadLetterQueue = ptr(*v)
		}
	}
	if len(patch.Attributes) > 0 {
		attrs := maps.Clone(cur.Attributes)
		if attrs == nil {
			attrs = make(map[string]string, len(patch.Attributes))
		}
		for k, v := range patch.Attributes {
			if v == "" {
				delete(attrs, k)
			} else {
				attrs[k] = v
			}
		}
		if len(attrs) > spool.MaxQueueAttributes {
			return nil, spool.Invalidf("attributes would have %d entries; the limit is %d", len(attrs), spool.MaxQueueAttributes)
		}
		cur.Attributes = attrs
		if len(attrs) == 0 {
			cur.Attributes = nil
		}
	}
	if patch.Backoff != nil {
		b := spool.Backoff{}
		if cur.Backoff != nil {
			b = *cur.Backoff
		}
		if patch.Backoff.Base > 0 {
			b.Base = patch.Backoff.Base
		}
		if patch.Backoff.Max > 0 {
			b.Max = patch.Backoff.Max
		}
		if err := e.resolve(spool.QueueConfig{Backoff: &b}).Backoff.Validate("backoff"); err != nil {
			return nil, err
		}
		cur.Backoff = &b
	}
	if err := e.st.SetQueueConfig(ctx, name, cur); err != nil {
		return nil, fmt.Errorf("storing config of queue %q: %w", name, err)
	}
	e.forgetConfig(name)
	if patch.Paused != nil && !*patch.Paused || patch.Concurrency != nil || patch.Rate != nil || patch.Burst != nil {
		// Resumed, or limits changed (perhaps raised): waiters look again.
		e.hub.queueReady(name)
	}
	return e.Queue(ctx, name)
}
