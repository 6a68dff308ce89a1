package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// ScenarioDelayed measures how late delayed jobs start.
const ScenarioDelayed = "delayed"

// DelayedBy is the delay of every job of the delayed scenario.
const DelayedBy = 250 * time.Millisecond

// Delayer is implemented by targets that can enqueue a job to run after a
// delay (the delayed scenario runs only against them).
type Delayer interface {
	// EnqueueDelayed stores one job that becomes ready delay after the
	// system accepted it.
	EnqueueDelayed(ctx context.Context, queue string, payload []byte, delay time.Duration) error
}

// Metric names of the delayed scenario.
const (
	MetricLateP50 = "late_p50_ms"
	MetricLateP99 = "late_p99_ms"
	MetricLateMax = "late_max_ms"
)

// runDelayed: a paced producer offers o.Rate jobs per second for
// o.Duration, each delayed by DelayedBy, to o.Workers handlers. A job's
// lateness is its handler's start minus (the moment its enqueue was sent
// + DelayedBy): the job's run_at, as the client can know it, is at most
// one enqueue round trip later than that, so the figure errs on the side
// of lateness by at most the enqueue round trip.
func runDelayed(ctx context.Context, e *runEnv) (runFigures, error) {
	d, ok := e.t.(Delayer)
	if !ok {
		return nil, fmt.Errorf("%s cannot enqueue delayed jobs", e.t.Name())
	}
	n := max(int64(float64(e.o.Rate)*e.o.Duration.Seconds()), 1)
	interval := time.Duration(float64(time.Second) / float64(e.o.Rate))
	st := newStarts(n)
	base := st.base
	// Times in ns since base, +1 so that 0 means "not yet".
	due := make([]atomic.Int64, n)
	w := startWork(ctx, e.t, e.queue, e.o.Workers, st.handle)
	defer func() { _ = w.stop() }()

	producers := min(max(16, e.o.Rate/20), 256)
	var next atomic.Int64
	start := time.Now()
	stop := e.timeProgress(start, e.o.Duration)
	g := newGroup(ctx)
	for range producers {
		g.Go(func(ctx context.Context) error {
			for {
				seq := next.Add(1) - 1
				if seq >= n {
					return nil
				}
				if err := sleepUntil(ctx, start.Add(time.Duration(seq)*interval)); err != nil {
					return nil
				}
				sent := time.Now()
				due[seq].Store(int64(sent.Add(DelayedBy).Sub(base)) + 1)
				if err := d.EnqueueDelayed(ctx, e.queue, Payload(seq, e.o.PayloadSize), DelayedBy); err != nil {
					return fmt.Errorf("EnqueueDelayed: %w", err)
				}
			}
		})
	}
	err := g.Wait()
	stop()
	if err != nil {
		return nil, err
	}
	if err := st.await(ctx, w, drainTimeout+DelayedBy); err != nil {
		return nil, err
	}
	late := make([]float64, 0, n)
	for i := range n {
		late = append(late, ms(time.Duration(max(st.started[i].Load()-due[i].Load(), 0))))
	}
	return runFigures{
		MetricLateP50: Percentile(late, 50),
		MetricLateP99: Percentile(late, 99),
		MetricLateMax: Percentile(late, 100),
	}, nil
}
