package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// statsWindows are the windows of spool.QueueStats, in order.
var statsWindows = []time.Duration{time.Minute, 5 * time.Minute, time.Hour}

// sizingWindow is the window spool.Sizing is computed over.
const sizingWindow = 5 * time.Minute

// MaxStatsHistory bounds the history of GET /v1/queues/{queue}/stats.
const MaxStatsHistory = 48 * time.Hour

// maxWorkers bounds the worker counts of the sizing model.
const maxWorkers = 100_000

// readBuckets returns the buckets of width of queue ("" for all) starting
// in [from, to): the store's plus this node's not yet flushed, summed per
// (queue, start).
func (e *Engine) readBuckets(ctx context.Context, queue string, width time.Duration, from, to time.Time) ([]store.StatsBucket, error) {
	t := &e.tele
	t.flushMu.RLock()
	defer t.flushMu.RUnlock()
	stored, err := e.st.Stats(ctx, store.StatsParams{Queue: queue, Width: width, From: from, To: to})
	if err != nil {
		return nil, fmt.Errorf("reading telemetry: %w", err)
	}
	var own []store.StatsBucket
	if width == StatsWidth {
		own = t.unflushed(queue, from, to)
	} else {
		for _, b := range t.unflushed(queue, from.Truncate(width), to) {
			b.Width, b.Start = width, b.Start.Truncate(width)
			if !b.Start.Before(from) {
				own = append(own, b)
			}
		}
	}
	if len(own) == 0 {
		return stored, nil
	}
	at := make(map[statsKey]int, len(stored))
	for i := range stored {
		at[statsKey{stored[i].Queue, stored[i].Start.UnixNano()}] = i
	}
	for i := range own {
		k := statsKey{own[i].Queue, own[i].Start.UnixNano()}
		if j, ok := at[k]; ok {
			stored[j].Add(&own[i])
			continue
		}
		at[k] = len(stored)
		stored = append(stored, own[i])
	}
	return stored, nil
}

// window sums buckets into one window's figures. span is the time the
// window covers, in seconds.
func windowOf(w time.Duration, bs []store.StatsBucket, span float64) spool.WindowStats {
	var sum store.StatsBucket
	for i := range bs {
		sum.Add(&bs[i])
	}
	ws := spool.WindowStats{
		Window:   spool.Duration(w),
		Arrivals: sum.Arrivals,
		Finished: map[spool.State]int64{
			spool.StateSucceeded: sum.Succeeded, spool.StateDead: sum.Dead, spool.StateCancelled: sum.Cancelled,
		},
		Retries: sum.Retries,
		Wait:    timingOf(sum.WaitCount, sum.WaitSum, &sum.WaitHist),
		Run:     timingOf(sum.RunCount, sum.RunSum, &sum.RunHist),
	}
	ws.ThroughputByOutcome = map[spool.State]float64{}
	if span > 0 {
		ws.ArrivalRate = float64(sum.Arrivals) / span
		for s, n := range ws.Finished {
			ws.ThroughputByOutcome[s] = float64(n) / span
		}
		ws.Throughput = float64(sum.Succeeded+sum.Dead+sum.Cancelled) / span
		ws.FailureRate = float64(sum.Retries+sum.Dead) / span
	}
	if sum.Samples > 0 {
		n := float64(sum.Samples)
		ws.AvgDepth = float64(sum.DepthSum) / n
		ws.AvgReady = float64(sum.ReadySum) / n
		ws.AvgBusy = float64(sum.ActiveSum) / n
	}
	ll := spool.LittlesLaw{L: ws.AvgReady + ws.AvgBusy, W: ws.Wait.Mean + ws.Run.Mean}
	if span > 0 {
		ll.Lambda = float64(sum.WaitCount) / span
	}
	ll.LambdaW = ll.Lambda * ll.W
	ws.LittlesLaw = ll
	return ws
}

func timingOf(n int64, sum float64, hist *[store.HistBuckets]int64) spool.Timing {
	if n <= 0 {
		return spool.Timing{}
	}
	return spool.Timing{
		Count: n,
		Mean:  sum / float64(n),
		P50:   quantile(hist, 0.50),
		P95:   quantile(hist, 0.95),
		P99:   quantile(hist, 0.99),
	}
}

// quantile estimates the q-quantile of a histogram: the bucket holding
// the rank q·count, linearly within its bounds (the last bucket, without
// an upper bound, answers its lower bound).
func quantile(hist *[store.HistBuckets]int64, q float64) float64 {
	var total int64
	for _, n := range hist {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum int64
	for i, n := range hist {
		if n == 0 || float64(cum+n) < rank {
			cum += n
			continue
		}
		lower := 0.0
		if i > 0 {
			lower = histBounds[i-1]
		}
		if i == len(histBounds) {
			return lower
		}
		upper := histBounds[i]
		return lower + (upper-lower)*(rank-float64(cum))/float64(n)
	}
	return histBounds[len(histBounds)-1]
}

// erlangC is the probability that a job waits in an M/M/c queue with c
// servers and offered load a = λ/μ (a < c).
func erlangC(c int, a float64) float64 {
	// Erlang B by its recurrence (stable for large c), then C from B.
	b := 1.0
	for k := 1; k <= c; k++ {
		b = a * b / (float64(k) + a*b)
	}
	return float64(c) * b / (float64(c) - a*(1-b))
}

// meanWaitMMc is the mean wait in queue of an M/M/c queue: C(c, a) / (cμ − λ).
func meanWaitMMc(c int, lambda, mu float64) float64 {
	a := lambda / mu
	if float64(c) <= a {
		return math.Inf(1)
	}
	return erlangC(c, a) / (float64(c)*mu - lambda)
}

// workersFor returns the smallest c whose M/M/c mean wait is at most
// target seconds, and the smallest c that keeps up at all (c > a).
func workersFor(lambda, service, target float64) (needed, least int) {
	a := lambda * service
	least = int(math.Floor(a)) + 1
	if lambda <= 0 {
		least = 0
	}
	if target <= 0 {
		return 0, least
	}
	if lambda <= 0 {
		return 0, least
	}
	mu := 1 / service
	for c := max(least, 1); c <= maxWorkers; c++ {
		if meanWaitMMc(c, lambda, mu) <= target {
			return c, least
		}
	}
	return maxWorkers, least
}

// QueueStats returns a queue's telemetry (see spool.QueueStats), with a
// history over the last history (0: none; at most MaxStatsHistory): 1-minute
// points up to 1 hour, 5-minute points beyond.
func (e *Engine) QueueStats(ctx context.Context, name string, history time.Duration) (*spool.QueueStats, error) {
	if err := validateReadableQueue(name); err != nil {
		return nil, err
	}
	if history < 0 || history > MaxStatsHistory {
		return nil, spool.Invalidf("history must be between 0 and %s", MaxStatsHistory)
	}
	q, err := e.st.Queue(ctx, name)
	if err != nil {
		if errors.Is(err, spool.ErrNotFound) {
			return nil, spool.NotFoundf("no queue named %q (a queue exists once a job is enqueued to it or its config is set)", name)
		}
		return nil, fmt.Errorf("reading queue %q: %w", name, err)
	}
	qc, err := e.queueConfig(ctx, name)
	if err != nil {
		return nil, err
	}
	now := e.clock.Now()
	cur := now.Truncate(StatsWidth)
	longest := statsWindows[len(statsWindows)-1]
	bs, err := e.readBuckets(ctx, name, StatsWidth, cur.Add(-longest+StatsWidth), cur.Add(StatsWidth))
	if err != nil {
		return nil, err
	}
	out := e.statsOf(q, qc, bs, statsWindows, now)
	if history > 0 {
		h, err := e.history(ctx, name, history, now)
		if err != nil {
			return nil, err
		}
		out.History = h
	}
	return out, nil
}

// statsOf computes a queue's figures over windows from its buckets.
func (e *Engine) statsOf(q *store.QueueRecord, qc spool.QueueConfig, bs []store.StatsBucket, windows []time.Duration, now time.Time) *spool.QueueStats {
	info := e.info(q)
	out := &spool.QueueStats{
		Queue:       q.Name,
		At:          now,
		BucketWidth: spool.Duration(StatsWidth),
		Now: spool.StatsNow{
			Counts: info.Counts, Depth: info.Depth, Busy: info.Counts[spool.StateActive],
			OldestReadyAge: info.OldestReadyAge,
		},
	}
	for _, w := range windows {
		out.Windows = append(out.Windows, windowAt(w, bs, now))
	}
	out.Sizing = sizing(windowAt(sizingWindow, bs, now), windowAt(windows[len(windows)-1], bs, now), info, *qc.TargetWait)
	return out
}

// AllQueueStats returns every queue's figures over the last 1 and 5
// minutes (not 1 hour: one read of every queue's recent buckets), each
// with a history of the last 5 minutes at the bucket width: what the
// dashboard's overview and /metrics show.
func (e *Engine) AllQueueStats(ctx context.Context) ([]*spool.QueueStats, error) {
	qs, err := e.st.Queues(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing queues: %w", err)
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name })
	now := e.clock.Now()
	cur := now.Truncate(StatsWidth)
	from := cur.Add(-sizingWindow + StatsWidth)
	bs, err := e.readBuckets(ctx, "", StatsWidth, from, cur.Add(StatsWidth))
	if err != nil {
		return nil, err
	}
	per := make(map[string][]store.StatsBucket)
	for _, b := range bs {
		per[b.Queue] = append(per[b.Queue], b)
	}
	out := make([]*spool.QueueStats, 0, len(qs))
	for _, q := range qs {
		qc, err := e.queueConfig(ctx, q.Name)
		if err != nil {
			return nil, err
		}
		st := e.statsOf(q, qc, per[q.Name], []time.Duration{time.Minute, sizingWindow}, now)
		st.History = historyOf(per[q.Name], from, cur.Add(StatsWidth), StatsWidth, now)
		st.History.Span = spool.Duration(sizingWindow)
		out = append(out, st)
	}
	return out, nil
}

// windowAt is the window of width w ending at now: its last w/StatsWidth
// buckets, the current one (partial) included, and rates are per second
// of w (so, early in a bucket, they read up to one bucket low).
func windowAt(w time.Duration, bs []store.StatsBucket, now time.Time) spool.WindowStats {
	cur := now.Truncate(StatsWidth)
	from := cur.Add(-w + StatsWidth)
	var in []store.StatsBucket
	for _, b := range bs {
		if !b.Start.Before(from) && !b.Start.After(cur) {
			in = append(in, b)
		}
	}
	return windowOf(w, in, w.Seconds())
}

// sizing applies the M/M/c model to a window's figures; long is a longer
// window, whose service time stands in when the window has none.
func sizing(w, long spool.WindowStats, info spool.QueueInfo, target spool.Duration) spool.Sizing {
	s := spool.Sizing{
		Window:     w.Window,
		Busy:       info.Counts[spool.StateActive],
		TargetWait: target,
		NetRate:    w.Throughput - w.ArrivalRate,
	}
	s.ArrivalRate = w.LittlesLaw.Lambda
	if s.ArrivalRate == 0 {
		s.ArrivalRate = w.ArrivalRate
	}
	s.ServiceTime = w.Run.Mean
	if w.Run.Count == 0 {
		s.ServiceTime = long.Run.Mean
	}
	s.OfferedLoad = s.ArrivalRate * s.ServiceTime
	if s.ServiceTime > 0 {
		needed, least := workersFor(s.ArrivalRate, s.ServiceTime, target.D().Seconds())
		s.MinWorkers = ptr(least)
		if target > 0 {
			s.WorkersNeeded = ptr(needed)
		}
	}
	switch {
	case info.Depth == 0:
		s.DrainTime = ptr(0.0)
	case s.NetRate > 0:
		s.DrainTime = ptr(float64(info.Depth) / s.NetRate)
	}
	return s
}

// history returns points over the last span.
func (e *Engine) history(ctx context.Context, name string, span time.Duration, now time.Time) (*spool.StatsHistory, error) {
	width, step := StatsWidth, time.Minute
	if span > time.Hour {
		width, step = HistoryWidth, HistoryWidth
	}
	end := now.Truncate(step).Add(step) // the current step included
	from := end.Add(-span.Truncate(step))
	if span%step != 0 {
		from = from.Add(-step)
	}
	bs, err := e.readBuckets(ctx, name, width, from, end)
	if err != nil {
		return nil, err
	}
	h := historyOf(bs, from, end, step, now)
	h.Span = spool.Duration(span)
	return h, nil
}

// historyOf sums buckets into points of step from from to end.
func historyOf(bs []store.StatsBucket, from, end time.Time, step time.Duration, now time.Time) *spool.StatsHistory {
	n := int(end.Sub(from) / step)
	sums := make([]store.StatsBucket, n)
	for i := range bs {
		k := int(bs[i].Start.Sub(from) / step)
		if k >= 0 && k < n {
			sums[k].Add(&bs[i])
		}
	}
	h := &spool.StatsHistory{Step: spool.Duration(step), Points: make([]spool.StatsPoint, n)}
	for i := range sums {
		b := &sums[i]
		at := from.Add(time.Duration(i) * step)
		secs := step.Seconds()
		if i == n-1 {
			secs = max(now.Sub(at).Seconds(), 1)
		}
		p := spool.StatsPoint{At: at, Arrivals: b.Arrivals, Succeeded: b.Succeeded, Dead: b.Dead, Cancelled: b.Cancelled,
			Retries: b.Retries, ArrivalRate: float64(b.Arrivals) / secs,
			Throughput: float64(b.Succeeded+b.Dead+b.Cancelled) / secs}
		if b.WaitCount > 0 {
			p.WaitMean = b.WaitSum / float64(b.WaitCount)
			p.WaitP95 = quantile(&b.WaitHist, 0.95)
		}
		if b.RunCount > 0 {
			p.RunMean = b.RunSum / float64(b.RunCount)
		}
		if b.Samples > 0 {
			p.AvgDepth = float64(b.DepthSum) / float64(b.Samples)
			p.AvgBusy = float64(b.ActiveSum) / float64(b.Samples)
		}
		h.Points[i] = p
	}
	return h
}

// minuteFigures returns, per queue, the 1-minute window (what
// spool.QueueInfo carries), from one read of every queue's buckets.
func (e *Engine) minuteFigures(ctx context.Context, queue string) (map[string]spool.WindowStats, error) {
	now := e.clock.Now()
	cur := now.Truncate(StatsWidth)
	bs, err := e.readBuckets(ctx, queue, StatsWidth, cur.Add(-time.Minute+StatsWidth), cur.Add(StatsWidth))
	if err != nil {
		return nil, err
	}
	per := make(map[string][]store.StatsBucket)
	for _, b := range bs {
		per[b.Queue] = append(per[b.Queue], b)
	}
	out := make(map[string]spool.WindowStats, len(per))
	for q, qb := range per {
		out[q] = windowAt(time.Minute, qb, now)
	}
	return out, nil
}
