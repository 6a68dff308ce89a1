package engine

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Telemetry: what happens to each queue, counted cluster-wide.
//
// Each node counts in memory, per queue and 10-second bucket (arrivals,
// finishes by outcome, retries, wait and run times as sums and fixed
// histograms), and every TelemetryFlush adds what it counted to the store
// with store.Telemetry.AddStats, which adds to the buckets every other node
// adds to. At each flush it also samples every queue's depth, ready and
// active counts into the current bucket, so the time averages come from
// all nodes' samples. Each bucket is added twice: at the 10-second width
// (kept StatsRetention, enough for the 1-hour window) and into its
// 5-minute bucket (kept HistoryRetention, the history). Readers take the
// store's buckets plus what this node counted and has not flushed yet: a
// node's own traffic shows at once, the others' within one flush.

const (
	// StatsWidth is the width of the buckets the windows are made of.
	StatsWidth = 10 * time.Second
	// HistoryWidth is the width of the history's buckets.
	HistoryWidth = 5 * time.Minute
	// StatsRetention and HistoryRetention are how long buckets are kept.
	StatsRetention   = 2 * time.Hour
	HistoryRetention = 48 * time.Hour
	// DefaultTelemetryFlush is Config.TelemetryFlush's default.
	DefaultTelemetryFlush = 2 * time.Second
	// statsPurgeEvery is how often old buckets are looked for.
	statsPurgeEvery = time.Minute
)

// histBounds are the upper bounds, in seconds, of the wait and run time
// histograms' buckets; the last bucket has no upper bound.
var histBounds = [store.HistBuckets - 1]float64{
	.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000,
}

// histIndex is the histogram bucket of a duration of secs seconds: the
// first whose upper bound is at least secs.
func histIndex(secs float64) int {
	return sort.SearchFloat64s(histBounds[:], secs)
}

type statsKey struct {
	queue string
	start int64 // unix nanoseconds of the StatsWidth bucket
}

// telemetry is a node's counts not yet flushed.
type telemetry struct {
	// flushMu is held for writing while a flush moves pending into the
	// store, so that a reader sees each count once: in pending or in the
	// store.
	flushMu sync.RWMutex

	mu      sync.Mutex
	pending map[statsKey]*store.StatsBucket
	// lastPurge is when old buckets were last purged.
	lastPurge time.Time
	// off drops every count (Config.DisableTelemetry).
	off bool
}

// bucket returns the pending bucket of (queue, now); call with t.mu held.
func (t *telemetry) bucket(queue string, now time.Time) *store.StatsBucket {
	start := now.Truncate(StatsWidth)
	k := statsKey{queue, start.UnixNano()}
	b := t.pending[k]
	if b == nil {
		if t.pending == nil {
			t.pending = make(map[statsKey]*store.StatsBucket)
		}
		b = &store.StatsBucket{Queue: queue, Width: StatsWidth, Start: start}
		t.pending[k] = b
	}
	return b
}

func (t *telemetry) arrived(queue string, now time.Time, n int) {
	if t.off {
		return
	}
	t.mu.Lock()
	t.bucket(queue, now).Arrivals += int64(n)
	t.mu.Unlock()
}

// waited records the wait of jobs just leased.
func (t *telemetry) waited(recs []*store.Record, now time.Time) {
	if t.off {
		return
	}
	t.mu.Lock()
	for _, r := range recs {
		if r.ReadyAt == nil {
			continue
		}
		d := max(now.Sub(*r.ReadyAt), 0).Seconds()
		b := t.bucket(r.Queue, now)
		b.WaitCount++
		b.WaitSum += d
		b.WaitHist[histIndex(d)]++
	}
	t.mu.Unlock()
}

// left records a transition from prev to r's state: the run time of an
// attempt that ended, a retry, a finish.
func (t *telemetry) left(prev spool.State, r *store.Record, now time.Time) {
	ended := prev == spool.StateActive && r.State != spool.StateActive
	if t.off || !ended && !r.State.Terminal() {
		return
	}
	t.mu.Lock()
	b := t.bucket(r.Queue, now)
	if ended && r.StartedAt != nil {
		d := max(now.Sub(*r.StartedAt), 0).Seconds()
		b.RunCount++
		b.RunSum += d
		b.RunHist[histIndex(d)]++
	}
	switch r.State {
	case spool.StateSucceeded:
		b.Succeeded++
	case spool.StateDead:
		b.Dead++
	case spool.StateCancelled:
		b.Cancelled++
	default:
		if ended {
			b.Retries++
		}
	}
	t.mu.Unlock()
}

// unflushed returns copies of the pending buckets of queue ("" for every
// queue) that start in [from, to). Call with flushMu held for reading.
func (t *telemetry) unflushed(queue string, from, to time.Time) []store.StatsBucket {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []store.StatsBucket
	for _, b := range t.pending {
		if (queue == "" || b.Queue == queue) && !b.Start.Before(from) && b.Start.Before(to) {
			out = append(out, *b)
		}
	}
	return out
}

// FlushTelemetry adds what this node counted since the last flush to the
// store, with a sample of every queue's depth. The maintenance of the
// buckets (purging old ones) runs from here too. Counts that could not be
// stored are kept for the next flush.
func (e *Engine) FlushTelemetry(ctx context.Context) error {
	t := &e.tele
	if t.off {
		return nil
	}
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	now := e.clock.Now()
	qs, qerr := e.st.Queues(ctx)
	t.mu.Lock()
	pending := t.pending
	t.pending = nil
	t.mu.Unlock()
	if qerr == nil {
		for _, q := range qs {
			depth := depthOf(q.Counts)
			if pending == nil {
				pending = make(map[statsKey]*store.StatsBucket)
			}
			start := now.Truncate(StatsWidth)
			k := statsKey{q.Name, start.UnixNano()}
			b := pending[k]
			if b == nil {
				b = &store.StatsBucket{Queue: q.Name, Width: StatsWidth, Start: start}
				pending[k] = b
			}
			b.Samples++
			b.DepthSum += depth
			b.ReadySum += q.Counts[spool.StateReady]
			b.ActiveSum += q.Counts[spool.StateActive]
		}
	}
	if len(pending) > 0 {
		deltas := make([]store.StatsBucket, 0, 2*len(pending))
		coarse := make(map[statsKey]int)
		for _, b := range pending {
			deltas = append(deltas, *b)
		}
		for _, b := range pending {
			c := *b
			c.Width, c.Start = HistoryWidth, b.Start.Truncate(HistoryWidth)
			k := statsKey{c.Queue, c.Start.UnixNano()}
			if i, ok := coarse[k]; ok {
				deltas[i].Add(&c)
				continue
			}
			coarse[k] = len(deltas)
			deltas = append(deltas, c)
		}
		if err := e.st.AddStats(ctx, deltas); err != nil {
			// Keep the counts (not the samples: a later flush samples
			// again) for the next flush.
			t.mu.Lock()
			for k, b := range pending {
				b.Samples, b.DepthSum, b.ReadySum, b.ActiveSum = 0, 0, 0, 0
				if b.Empty() {
					continue
				}
				cur := t.bucket(b.Queue, time.Unix(0, k.start))
				cur.Add(b)
			}
			t.mu.Unlock()
			return err
		}
	}
	if qerr != nil {
		return qerr
	}
	if now.Sub(t.lastPurge) >= statsPurgeEvery || now.Before(t.lastPurge) {
		t.lastPurge = now
		if _, err := e.st.PurgeStats(ctx, StatsWidth, now.Add(-StatsRetention)); err != nil {
			return err
		}
		if _, err := e.st.PurgeStats(ctx, HistoryWidth, now.Add(-HistoryRetention)); err != nil {
			return err
		}
	}
	return nil
}

// telemetryLoop flushes every TelemetryFlush until ctx ends, and once
// more then, so that a node stopped cleanly loses no counts.
func (e *Engine) telemetryLoop(ctx context.Context) {
	tk := time.NewTicker(e.cfg.TelemetryFlush)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := e.FlushTelemetry(fctx); err != nil {
				e.log.Warn("storing telemetry at stop failed", "error", err)
			}
			cancel()
			return
		case <-tk.C:
			fctx, cancel := context.WithTimeout(ctx, e.cfg.TelemetryFlush*4)
			if err := e.FlushTelemetry(fctx); err != nil && ctx.Err() == nil {
				e.log.Warn("storing telemetry failed; its counts are kept for the next flush", "error", err)
			}
			cancel()
		}
	}
}
