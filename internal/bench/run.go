package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scenarios lists every scenario name in the order Run runs them.
var Scenarios = []string{
	ScenarioEnqueueSingle,
	ScenarioEnqueueBatch,
	ScenarioProcess,
	ScenarioLatency,
	ScenarioBackpressure,
	ScenarioDelayed,
}

// Fixed sizes of the scenarios, the same for every target.
const (
	// BatchProducers is how many producers enqueue_batch (and the preload
	// of process) run.
	BatchProducers = 4
	// BackpressureWorkers is how many handlers drain the queue in
	// backpressure, each taking BackpressureJobTime per job: at most
	// 1,000 jobs/s, so producers offer far more than they take, however
	// fast the system's own workers are.
	BackpressureWorkers = 2
	BackpressureJobTime = 2 * time.Millisecond
	// sampleEvery is how often backpressure samples the queue's pending
	// count and the server's RSS.
	sampleEvery = 100 * time.Millisecond
	// drainTimeout bounds how long a scenario waits for accepted jobs to
	// be handled once producers stopped, and for Pending to reach 0.
	drainTimeout = 60 * time.Second
)

// DefaultOptions returns the sizes Run uses for zero fields of Options.
func DefaultOptions() Options {
	return Options{
		Runs:        3,
		Producers:   8,
		Count:       10000,
		BatchSize:   100,
		Workers:     32,
		Rate:        1000,
		Duration:    10 * time.Second,
		MaxDepth:    1000,
		PayloadSize: 100,
	}
}

// QuickOptions returns tiny sizes (a few hundred jobs, 1 s runs, one run
// each) that check the harness works; their figures mean little.
func QuickOptions() Options {
	return Options{
		Runs:        1,
		Producers:   4,
		Count:       300,
		BatchSize:   50,
		Workers:     8,
		Rate:        200,
		Duration:    time.Second,
		MaxDepth:    50,
		PayloadSize: 100,
	}
}

// withDefaults fills the zero fields from DefaultOptions, and an empty
// Scenarios with every scenario.
func (o Options) withDefaults() Options {
	if len(o.Scenarios) == 0 {
		o.Scenarios = slices.Clone(Scenarios)
	}
	return o.FillFrom(DefaultOptions())
}

// FillFrom returns o with its zero sizes taken from d (e.g. QuickOptions).
func (o Options) FillFrom(d Options) Options {
	fill := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&o.Runs, d.Runs)
	fill(&o.Producers, d.Producers)
	fill(&o.Count, d.Count)
	fill(&o.BatchSize, d.BatchSize)
	fill(&o.Workers, d.Workers)
	fill(&o.Rate, d.Rate)
	fill(&o.PayloadSize, d.PayloadSize)
	if o.Duration == 0 {
		o.Duration = d.Duration
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = d.MaxDepth
	}
	return o
}

// Validate checks options after defaults were filled; errors name the
// field.
func (o Options) Validate() error {
	var errs []error
	for _, s := range o.Scenarios {
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, fmt.Errorf("Scenarios: unknown scenario %q (known: %s)", s, strings.Join(Scenarios, ", ")))
		}
	}
	positive := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %d", name, v))
		}
	}
	positive("Runs", o.Runs)
	positive("Producers", o.Producers)
	positive("Count", o.Count)
	positive("BatchSize", o.BatchSize)
	positive("Workers", o.Workers)
	positive("Rate", o.Rate)
	if o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("Duration must be positive, not %s", o.Duration))
	}
	if o.MaxDepth <= 0 {
		errs = append(errs, fmt.Errorf("MaxDepth must be positive, not %d", o.MaxDepth))
	}
	if o.PayloadSize < MinPayloadSize {
		errs = append(errs, fmt.Errorf("PayloadSize must be at least %d bytes (it carries a sequence number), not %d", MinPayloadSize, o.PayloadSize))
	}
	return errors.Join(errs...)
}

// params renders the options for Report.Params.
func (o Options) params() map[string]string {
	return map[string]string{
		"scenarios":            strings.Join(o.Scenarios, ","),
		"runs":                 strconv.Itoa(o.Runs),
		"producers":            strconv.Itoa(o.Producers),
		"count":                strconv.Itoa(o.Count),
		"batch":                strconv.Itoa(o.BatchSize),
		"batch_producers":      strconv.Itoa(BatchProducers),
		"workers":              strconv.Itoa(o.Workers),
		"backpressure_workers": strconv.Itoa(BackpressureWorkers),
		"backpressure_job_ms":  strconv.FormatInt(BackpressureJobTime.Milliseconds(), 10),
		"rate":                 strconv.Itoa(o.Rate),
		"duration":             o.Duration.String(),
		"max_depth":            strconv.FormatInt(o.MaxDepth, 10),
		"payload":              fmt.Sprintf("%d-byte JSON string carrying a sequence number", o.PayloadSize),
		"handler":              "no-op",
		"percentiles":          "exact, nearest rank over every sample",
	}
}

// Run runs the scenarios of o against t, each o.Runs times, every run on a
// queue of its own, and returns their figures. On an error it returns the
// report of the scenarios done so far, the failed one included with the
// runs that succeeded, and the error.
func Run(ctx context.Context, t Target, o Options) (*Report, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r := &Report{
		System:     t.Name(),
		Durability: t.Durability(),
		Machine:    machine(),
		Started:    time.Now().UTC(),
		Params:     o.params(),
	}
	// Queue names: unique per invocation, so a shared server keeps the
	// runs of several invocations apart too.
	prefix := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, sc := range scenarioTable {
		if !slices.Contains(o.Scenarios, sc.name) {
			continue
		}
		res := ScenarioResult{Name: sc.name, Metrics: map[string]Metric{}}
		if sc.skip != nil {
			if why := sc.skip(t); why != "" {
				res.Skipped = why
				r.Scenarios = append(r.Scenarios, res)
				continue
			}
		}
		var runs []runFigures
		var err error
		for i := 1; i <= o.Runs; i++ {
			e := &runEnv{
				t:     t,
				o:     o,
				queue: fmt.Sprintf("%s-%s-%d", prefix, strings.ReplaceAll(sc.name, "_", "-"), i),
				name:  sc.name,
				run:   i,
			}
			var f runFigures
			f, err = sc.run(ctx, e)
			if err != nil {
				err = fmt.Errorf("%s, run %d of %d: %w", sc.name, i, o.Runs, err)
				break
			}
			runs = append(runs, f)
		}
		res.Metrics = collect(sc.metrics, runs)
		r.Scenarios = append(r.Scenarios, res)
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// machine describes the machine the bench runs on.
func machine() string {
	s := fmt.Sprintf("%d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v) + ", " + s
			}
		}
	}
	return s
}

// scenario is one entry of scenarioTable.
type scenario struct {
	name    string
	metrics []metricSpec
	// skip, when set, returns why t cannot run the scenario ("" if it can).
	skip func(t Target) string
	run  func(ctx context.Context, e *runEnv) (runFigures, error)
}

// Metric names.
const (
	MetricJobsPerSec     = "jobs_per_s"
	MetricEnqueueP50     = "enqueue_p50_ms"
	MetricEnqueueP99     = "enqueue_p99_ms"
	MetricBatchP50       = "batch_p50_ms"
	MetricBatchP99       = "batch_p99_ms"
	MetricE2EP50         = "e2e_p50_ms"
	MetricE2EP99         = "e2e_p99_ms"
	MetricE2EP999        = "e2e_p999_ms"
	MetricE2EMax         = "e2e_max_ms"
	MetricAcceptedPerSec = "accepted_per_s"
	MetricRejectedPerSec = "rejected_per_s"
	MetricRejectP50      = "reject_p50_ms"
	MetricRejectP99      = "reject_p99_ms"
	MetricPeakPending    = "peak_pending"
	MetricRSSStart       = "rss_start_mib"
	MetricRSSPeak        = "rss_peak_mib"
	MetricRSSEnd         = "rss_end_mib"
)

var scenarioTable = []scenario{
	{
		name: ScenarioEnqueueSingle,
		metrics: []metricSpec{
			{MetricJobsPerSec, UnitJobsPerSec, Higher},
			{MetricEnqueueP50, UnitMs, Lower},
			{MetricEnqueueP99, UnitMs, Lower},
		},
		run: runEnqueueSingle,
	},
	{
		name: ScenarioEnqueueBatch,
		metrics: []metricSpec{
			{MetricJobsPerSec, UnitJobsPerSec, Higher},
			{MetricBatchP50, UnitMs, Lower},
			{MetricBatchP99, UnitMs, Lower},
		},
		run: runEnqueueBatch,
	},
	{
		name:    ScenarioProcess,
		metrics: []metricSpec{{MetricJobsPerSec, UnitJobsPerSec, Higher}},
		run:     runProcess,
	},
	{
		name: ScenarioLatency,
		metrics: []metricSpec{
			{MetricE2EP50, UnitMs, Lower},
			{MetricE2EP99, UnitMs, Lower},
			{MetricE2EP999, UnitMs, Lower},
			{MetricE2EMax, UnitMs, Lower},
			{MetricEnqueueP50, UnitMs, Lower},
			{MetricEnqueueP99, UnitMs, Lower},
			{MetricAcceptedPerSec, UnitJobsPerSec, Higher},
		},
		run: runLatency,
	},
	{
		name: ScenarioBackpressure,
		metrics: []metricSpec{
			{MetricAcceptedPerSec, UnitJobsPerSec, Higher},
			{MetricRejectedPerSec, UnitPerSec, ""},
			{MetricRejectP50, UnitMs, Lower},
			{MetricRejectP99, UnitMs, Lower},
			{MetricPeakPending, UnitCount, ""},
			{MetricRSSStart, UnitMiB, Lower},
			{MetricRSSPeak, UnitMiB, Lower},
			{MetricRSSEnd, UnitMiB, Lower},
		},
		skip: func(t Target) string {
			if _, ok := t.(Bounded); !ok {
				return t.Name() + " has no bounded queues (the target does not implement bench.Bounded)"
			}
			return ""
		},
		run: runBackpressure,
	},
	{
		name: ScenarioDelayed,
		metrics: []metricSpec{
			{MetricLateP50, UnitMs, Lower},
			{MetricLateP99, UnitMs, Lower},
			{MetricLateMax, UnitMs, Lower},
		},
		skip: func(t Target) string {
			if _, ok := t.(Delayer); !ok {
				return t.Name() + " cannot enqueue delayed jobs (the target does not implement bench.Delayer)"
			}
			return ""
		},
		run: runDelayed,
	},
}

// runEnv is what one run of a scenario works with.
type runEnv struct {
	t     Target
	o     Options
	queue string
	name  string
	run   int
}

// progress reports done out of total every 100 ms until the returned stop
// is called, which reports the last figure. It does nothing without
// Options.Progress.
func (e *runEnv) progress(total int, done func() int) (stop func()) {
	if e.o.Progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				e.o.Progress(e.name, e.run, min(done(), total), total)
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			wg.Wait()
			e.o.Progress(e.name, e.run, min(done(), total), total)
		})
	}
}

// timeProgress reports the time elapsed since start, in milliseconds, out
// of d.
func (e *runEnv) timeProgress(start time.Time, d time.Duration) (stop func()) {
	return e.progress(int(d.Milliseconds()), func() int { return int(time.Since(start).Milliseconds()) })
}

// group runs goroutines that share one context, cancelled with the first
// error (a tiny errgroup).
type group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

func newGroup(ctx context.Context) *group {
	g := &group{}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	return g
}

// Go runs f; an error from f cancels the group's context.
func (g *group) Go(f func(ctx context.Context) error) {
	g.wg.Go(func() {
		if err := f(g.ctx); err != nil {
			g.cancel(err)
		}
	})
}

// Wait waits for every f and returns the first error (or the parent
// context's).
func (g *group) Wait() error {
	g.wg.Wait()
	err := context.Cause(g.ctx)
	g.cancel(nil)
	return err
}

// worker is a Target.Work running in the background.
type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// startWork runs t.Work(queue, workers, h) until stop.
func startWork(ctx context.Context, t Target, queue string, workers int, h Handler) *worker {
	ctx, cancel := context.WithCancel(ctx)
	w := &worker{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.err = t.Work(ctx, queue, workers, h)
	}()
	return w
}

// stop ends Work and returns its error.
func (w *worker) stop() error {
	w.cancel()
	<-w.done
	if w.err != nil {
		return fmt.Errorf("Work: %w", w.err)
	}
	return nil
}

// ended is closed once Work returned.
func (w *worker) ended() <-chan struct{} { return w.done }

// endedEarly is the error for a Work that returned before it was stopped.
func (w *worker) endedEarly() error {
	if w.err != nil {
		return fmt.Errorf("Work returned early: %w", w.err)
	}
	return errors.New("Work returned before it was stopped")
}

// waitPendingZero polls t.Pending until queue has no unfinished job.
func waitPendingZero(ctx context.Context, t Target, queue string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last int64
	for {
		n, err := t.Pending(ctx, queue)
		if err != nil {
			return fmt.Errorf("Pending: %w", err)
		}
		if n == 0 {
			return nil
		}
		last = n
		if time.Now().After(deadline) {
			return fmt.Errorf("%d jobs still pending %s after every job was handled", last, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sleepUntil waits until t, or until ctx is done.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
