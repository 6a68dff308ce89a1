package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// runEnqueueSingle: o.Producers producers call Enqueue, one job at a time,
// until o.Count jobs were accepted.
func runEnqueueSingle(ctx context.Context, e *runEnv) (runFigures, error) {
	n := int64(e.o.Count)
	var next, done atomic.Int64
	lat := make([][]float64, e.o.Producers)
	stop := e.progress(int(n), func() int { return int(done.Load()) })
	g := newGroup(ctx)
	start := time.Now()
	for p := range e.o.Producers {
		g.Go(func(ctx context.Context) error {
			for {
				seq := next.Add(1) - 1
				if seq >= n || ctx.Err() != nil {
					return nil
				}
				payload := Payload(seq, e.o.PayloadSize)
				t0 := time.Now()
				if err := e.t.Enqueue(ctx, e.queue, payload); err != nil {
					return fmt.Errorf("Enqueue: %w", err)
				}
				lat[p] = append(lat[p], ms(time.Since(t0)))
				done.Add(1)
			}
		})
	}
	err := g.Wait()
	elapsed := time.Since(start)
	stop()
	if err != nil {
		return nil, err
	}
	all := flatten(lat)
	return runFigures{
		MetricJobsPerSec: rate(n, elapsed),
		MetricEnqueueP50: Percentile(all, 50),
		MetricEnqueueP99: Percentile(all, 99),
	}, nil
}

// runEnqueueBatch: BatchProducers producers call EnqueueBatch with
// o.BatchSize jobs until o.Count jobs were accepted.
func runEnqueueBatch(ctx context.Context, e *runEnv) (runFigures, error) {
	var done atomic.Int64
	stop := e.progress(e.o.Count, func() int { return int(done.Load()) })
	start := time.Now()
	lat, err := enqueueBatches(ctx, e, &done)
	elapsed := time.Since(start)
	stop()
	if err != nil {
		return nil, err
	}
	return runFigures{
		MetricJobsPerSec: rate(int64(e.o.Count), elapsed),
		MetricBatchP50:   Percentile(lat, 50),
		MetricBatchP99:   Percentile(lat, 99),
	}, nil
}

// enqueueBatches enqueues o.Count jobs in batches of o.BatchSize from
// BatchProducers producers, adding to done as batches are accepted, and
// returns each batch's round trip in ms.
func enqueueBatches(ctx context.Context, e *runEnv, done *atomic.Int64) ([]float64, error) {
	n, b := int64(e.o.Count), int64(e.o.BatchSize)
	batches := (n + b - 1) / b
	var next atomic.Int64
	lat := make([][]float64, BatchProducers)
	g := newGroup(ctx)
	for p := range BatchProducers {
		g.Go(func(ctx context.Context) error {
			for {
				i := next.Add(1) - 1
				if i >= batches || ctx.Err() != nil {
					return nil
				}
				first, end := i*b, min((i+1)*b, n)
				payloads := make([][]byte, 0, end-first)
				for seq := first; seq < end; seq++ {
					payloads = append(payloads, Payload(seq, e.o.PayloadSize))
				}
				t0 := time.Now()
				if err := e.t.EnqueueBatch(ctx, e.queue, payloads); err != nil {
					return fmt.Errorf("EnqueueBatch: %w", err)
				}
				lat[p] = append(lat[p], ms(time.Since(t0)))
				done.Add(end - first)
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return flatten(lat), nil
}

// runProcess: preload o.Count jobs (not timed), then time o.Workers
// no-op handlers until every job was handled, and check that Pending
// reaches 0.
func runProcess(ctx context.Context, e *runEnv) (runFigures, error) {
	var loaded atomic.Int64
	if _, err := enqueueBatches(ctx, e, &loaded); err != nil {
		return nil, fmt.Errorf("preloading: %w", err)
	}
	n := int64(e.o.Count)
	var handled atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, payload []byte) error {
		if handled.Add(1) == n {
			once.Do(func() { close(all) })
		}
		return nil
	}
	stop := e.progress(int(n), func() int { return int(handled.Load()) })
	defer stop()
	start := time.Now()
	w := startWork(ctx, e.t, e.queue, e.o.Workers, h)
	// A run that stops making progress fails rather than hangs.
	stall := time.NewTicker(drainTimeout)
	defer stall.Stop()
	last := int64(0)
wait:
	for {
		select {
		case <-all:
			break wait
		case <-w.ended():
			return nil, w.endedEarly()
		case <-ctx.Done():
			_ = w.stop()
			return nil, ctx.Err()
		case <-stall.C:
			now := handled.Load()
			if now == last {
				_ = w.stop()
				return nil, fmt.Errorf("no job handled for %s (%d of %d handled)", drainTimeout, now, n)
			}
			last = now
		}
	}
	elapsed := time.Since(start)
	stop()
	err := waitPendingZero(ctx, e.t, e.queue, drainTimeout)
	if werr := w.stop(); err == nil {
		err = werr
	}
	if err != nil {
		return nil, err
	}
	return runFigures{MetricJobsPerSec: rate(n, elapsed)}, nil
}

// runLatency: a paced, open-loop producer offers o.Rate jobs per second
// for o.Duration while o.Workers handlers run; each job's end-to-end
// latency is its handler's start minus its enqueue's acknowledgement (0 if
// the handler started first).
func runLatency(ctx context.Context, e *runEnv) (runFigures, error) {
	n := int64(float64(e.o.Rate) * e.o.Duration.Seconds())
	if n < 1 {
		n = 1
	}
	interval := time.Duration(float64(time.Second) / float64(e.o.Rate))
	// Times in ns since st.base, +1 so that 0 means "not yet".
	acked := make([]atomic.Int64, n)
	var accepted atomic.Int64
	st := newStarts(n)
	base := st.base
	w := startWork(ctx, e.t, e.queue, e.o.Workers, st.handle)
	defer func() { _ = w.stop() }()

	// Enough producers that enqueues as slow as 50 ms keep the pace.
	producers := min(max(16, e.o.Rate/20), 256)
	lat := make([][]float64, producers)
	var next atomic.Int64
	start := time.Now()
	stop := e.timeProgress(start, e.o.Duration)
	g := newGroup(ctx)
	for p := range producers {
		g.Go(func(ctx context.Context) error {
			for {
				seq := next.Add(1) - 1
				if seq >= n {
					return nil
				}
				if err := sleepUntil(ctx, start.Add(time.Duration(seq)*interval)); err != nil {
					return nil // cancelled: the group reports why
				}
				payload := Payload(seq, e.o.PayloadSize)
				t0 := time.Now()
				if err := e.t.Enqueue(ctx, e.queue, payload); err != nil {
					return fmt.Errorf("Enqueue: %w", err)
				}
				ack := time.Now()
				acked[seq].Store(int64(ack.Sub(base)) + 1)
				lat[p] = append(lat[p], ms(ack.Sub(t0)))
				accepted.Add(1)
			}
		})
	}
	err := g.Wait()
	offered := time.Since(start)
	stop()
	if err != nil {
		return nil, err
	}
	// Every job was accepted; wait for the last handlers.
	if err := st.await(ctx, w, drainTimeout); err != nil {
		return nil, err
	}
	e2e := make([]float64, 0, n)
	for i := range n {
		d := st.started[i].Load() - acked[i].Load()
		e2e = append(e2e, ms(time.Duration(max(d, 0))))
	}
	enq := flatten(lat)
	return runFigures{
		MetricE2EP50:         Percentile(e2e, 50),
		MetricE2EP99:         Percentile(e2e, 99),
		MetricE2EP999:        Percentile(e2e, 99.9),
		MetricE2EMax:         Percentile(e2e, 100),
		MetricEnqueueP50:     Percentile(enq, 50),
		MetricEnqueueP99:     Percentile(enq, 99),
		MetricAcceptedPerSec: rate(accepted.Load(), offered),
	}, nil
}

// runBackpressure: bound the queue to o.MaxDepth, fill it to the bound,
// drain it with BackpressureWorkers handlers of BackpressureJobTime per
// job, and let o.Producers
// producers enqueue as fast as they can for o.Duration: count accepted and refused (IsFull)
// enqueues, time the refusals, sample Pending and the server's RSS.
func runBackpressure(ctx context.Context, e *runEnv) (runFigures, error) {
	b := e.t.(Bounded)
	if err := b.SetMaxDepth(ctx, e.queue, e.o.MaxDepth); err != nil {
		return nil, fmt.Errorf("SetMaxDepth: %w", err)
	}
	pid := 0
	if sp, ok := e.t.(ServerProcess); ok {
		pid = sp.ServerPID()
	}
	var rss rssStats
	if pid > 0 {
		rss.sample(pid)
		rss.start = rss.last
	}
	// Start at the bound, as in a lasting overload (not timed).
	var seq atomic.Int64
	for seq.Load() < e.o.MaxDepth {
		n := min(int64(e.o.BatchSize), e.o.MaxDepth-seq.Load())
		payloads := make([][]byte, n)
		for i := range payloads {
			payloads[i] = Payload(seq.Add(1)-1, e.o.PayloadSize)
		}
		if err := e.t.EnqueueBatch(ctx, e.queue, payloads); err != nil {
			return nil, fmt.Errorf("filling the queue to its bound: EnqueueBatch: %w", err)
		}
	}
	w := startWork(ctx, e.t, e.queue, BackpressureWorkers, func(ctx context.Context, _ []byte) error {
		select {
		case <-time.After(BackpressureJobTime):
		case <-ctx.Done():
		}
		return nil
	})
	defer func() { _ = w.stop() }()

	var accepted, rejected atomic.Int64
	var peakPending atomic.Int64
	rejLat := make([][]float64, e.o.Producers)
	start := time.Now()
	end := start.Add(e.o.Duration)
	stop := e.timeProgress(start, e.o.Duration)
	defer stop()
	g := newGroup(ctx)
	g.Go(func(ctx context.Context) error {
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			n, err := e.t.Pending(ctx, e.queue)
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("Pending: %w", err)
			}
			if n > peakPending.Load() {
				peakPending.Store(n)
			}
			if pid > 0 {
				rss.sample(pid)
			}
			if time.Now().After(end) {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	})
	for p := range e.o.Producers {
		g.Go(func(ctx context.Context) error {
			for time.Now().Before(end) && ctx.Err() == nil {
				payload := Payload(seq.Add(1)-1, e.o.PayloadSize)
				t0 := time.Now()
				err := e.t.Enqueue(ctx, e.queue, payload)
				switch {
				case err == nil:
					accepted.Add(1)
				case b.IsFull(err):
					rejLat[p] = append(rejLat[p], ms(time.Since(t0)))
					rejected.Add(1)
				case ctx.Err() != nil:
					return nil
				default:
					return fmt.Errorf("Enqueue: %w", err)
				}
			}
			return nil
		})
	}
	err := g.Wait()
	elapsed := time.Since(start)
	stop()
	if err != nil {
		return nil, err
	}
	if pid > 0 {
		rss.sample(pid)
	}
	rss.end = rss.last
	select {
	case <-w.ended():
		return nil, w.endedEarly()
	default:
	}
	// Leave the queue empty for the next run (not timed, best effort).
	drainCtx, cancel := context.WithTimeout(ctx, drainTimeout)
	_ = waitPendingZero(drainCtx, e.t, e.queue, drainTimeout)
	cancel()
	if err := w.stop(); err != nil {
		return nil, err
	}
	rej := flatten(rejLat)
	f := runFigures{
		MetricAcceptedPerSec: rate(accepted.Load(), elapsed),
		MetricRejectedPerSec: rate(rejected.Load(), elapsed),
		MetricPeakPending:    float64(peakPending.Load()),
	}
	if len(rej) > 0 {
		f[MetricRejectP50] = Percentile(rej, 50)
		f[MetricRejectP99] = Percentile(rej, 99)
	}
	if rss.ok {
		f[MetricRSSStart] = rss.start
		f[MetricRSSPeak] = rss.peak
		f[MetricRSSEnd] = rss.end
	}
	return f, nil
}

// flatten joins the per-goroutine sample slices.
func flatten(parts [][]float64) []float64 {
	var n int
	for _, p := range parts {
		n += len(p)
	}
	out := make([]float64, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// starts records when a handler first started each of n jobs (by the
// sequence number in its payload), for scenarios that time jobs from
// enqueue to start.
type starts struct {
	n    int64
	base time.Time
	// started holds ns since base, +1 so that 0 means "not yet".
	started    []atomic.Int64
	handled    atomic.Int64
	badPayload atomic.Value
}

func newStarts(n int64) *starts {
	return &starts{n: n, base: time.Now(), started: make([]atomic.Int64, n)}
}

// handle is the scenario's Handler.
func (st *starts) handle(_ context.Context, payload []byte) error {
	now := int64(time.Since(st.base)) + 1
	seq, err := PayloadSeq(payload)
	if err != nil || seq < 0 || seq >= st.n {
		st.badPayload.CompareAndSwap(nil, fmt.Sprintf("%q", payload))
		return nil
	}
	if st.started[seq].CompareAndSwap(0, now) {
		st.handled.Add(1)
	}
	return nil
}

// await waits until every job was handled, at most timeout, then checks
// that no handler saw a payload that was not enqueued and stops the
// workers.
func (st *starts) await(ctx context.Context, w *worker, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for st.handled.Load() < st.n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d jobs not handled %s after the last enqueue", st.n-st.handled.Load(), st.n, timeout)
		}
		select {
		case <-w.ended():
			return w.endedEarly()
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if v := st.badPayload.Load(); v != nil {
		return fmt.Errorf("a handler got a payload that was not enqueued: %s", v)
	}
	return w.stop()
}
