package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spoolq/spool"
)

// UnknownTypePolicy says what a Worker does with a job whose type has no
// handler.
type UnknownTypePolicy int

const (
	// FailUnknown fails the attempt with an error that names the type and
	// the types the worker handles. The job is retried after its backoff
	// (a worker that handles it may take it then) and goes dead once its
	// attempts are spent. The default.
	FailUnknown UnknownTypePolicy = iota
	// ReleaseUnknown hands the job back at once, its attempt not counted,
	// for a worker pool that handles the type. The worker then pauses its
	// leasing briefly (growing up to 2s while it receives only such jobs),
	// so a job no pool handles does not spin. Prefer one queue per pool:
	// jobs of a shared queue go to whichever worker asks first.
	ReleaseUnknown
)

// Defaults of WorkerOptions.
const (
	DefaultConcurrency      = 10
	DefaultLease            = 30 * time.Second
	DefaultPollWait         = 30 * time.Second
	DefaultShutdownGrace    = 30 * time.Second
	DefaultProgressInterval = time.Second
	DefaultAckBatch         = 500
	DefaultAckDelay         = time.Millisecond
)

// WorkerOptions configures a Worker. Zero fields take the defaults.
type WorkerOptions struct {
	// Queues to take jobs from, in priority order: all ready jobs of the
	// first are taken before any of the second. Required.
	Queues []string
	// Concurrency is how many jobs run at once (default 10).
	Concurrency int
	// Prefetch is how many jobs the worker leases ahead of its free
	// slots, so that the next job is at hand when a handler returns and
	// leasing overlaps running (negative: none). A prefetched job waits,
	// its lease kept alive by heartbeats and its timeout not yet running,
	// and is released at once if the worker stops before running it.
	// Jobs leased ahead are not available to other workers: set it low
	// for long jobs on a queue shared by many workers.
	//
	// By default (0) it adapts, starting at Concurrency: it doubles, up
	// to 8 x Concurrency, each time the handlers run out of jobs while a
	// lease request is on its way (jobs shorter than a round trip), and
	// halves back towards Concurrency when a prefetched job waits over
	// 100ms for a handler (longer jobs). When short jobs give way to long
	// ones, the worker may thus hold up to 9 x Concurrency jobs once.
	Prefetch int
	// Lease is how long a claim on a job lasts without a heartbeat
	// (default 30s, at least 1s). A worker that vanishes delays its jobs
	// by at most this long.
	Lease time.Duration
	// HeartbeatInterval is how often a running job's lease is extended
	// (default Lease/3).
	HeartbeatInterval time.Duration
	// ProgressInterval is the shortest gap between two heartbeats sent
	// early to carry a job's progress (default 1s).
	ProgressInterval time.Duration
	// PollWait is how long one lease request waits on the server for a
	// job (default 30s, at most 5m).
	PollWait time.Duration
	// DefaultJobTimeout is the timeout of jobs enqueued without one (0:
	// none). The handler's context gets the deadline.
	DefaultJobTimeout time.Duration
	// ShutdownGrace is how long Run lets running jobs finish once its
	// context is done (default 30s). Jobs still running then are released
	// (see Run).
	ShutdownGrace time.Duration
	// UnknownType is what to do with a job no handler takes (default
	// FailUnknown).
	UnknownType UnknownTypePolicy
	// AckBatch bounds how many outcomes go in one POST /v1/acks (default
	// 500, at most 1000).
	AckBatch int
	// AckDelay is how long an outcome may wait for others to share its
	// request while jobs are still running (default 1ms). While a request
	// is in flight, outcomes queue up and go together in the next one;
	// when no job is running, an outcome goes at once.
	AckDelay time.Duration
	// Name identifies the worker in the jobs it holds (default
	// "host:pid").
	Name string
	// Logger receives the worker's logs (default: none).
	Logger *slog.Logger

	// adaptive is set by withDefaults when Prefetch was left at 0.
	adaptive bool
}

// Bounds of an adaptive prefetch (WorkerOptions.Prefetch left at 0).
const (
	maxPrefetchFactor = 8
	prefetchWaitLimit = 100 * time.Millisecond
)

// withDefaults fills the zero fields.
func (o WorkerOptions) withDefaults() WorkerOptions {
	o.Queues = slices.Clone(o.Queues)
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Prefetch == 0 {
		o.Prefetch = o.Concurrency
		o.adaptive = true
	}
	if o.Prefetch < 0 {
		o.Prefetch = 0
	}
	if o.Lease == 0 {
		o.Lease = DefaultLease
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = o.Lease / 3
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.PollWait == 0 {
		o.PollWait = DefaultPollWait
	}
	if o.ShutdownGrace == 0 {
		o.ShutdownGrace = DefaultShutdownGrace
	}
	if o.AckBatch == 0 {
		o.AckBatch = DefaultAckBatch
	}
	if o.AckDelay == 0 {
		o.AckDelay = DefaultAckDelay
	}
	if o.Name == "" {
		host, _ := os.Hostname()
		o.Name = host + ":" + strconv.Itoa(os.Getpid())
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// validate checks options filled by withDefaults; errors name the field.
func (o WorkerOptions) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("client: WorkerOptions."+format, args...))
	}
	if len(o.Queues) == 0 {
		bad("Queues is empty: name at least one queue")
	}
	for _, q := range o.Queues {
		if err := spool.ValidateQueueName(q); err != nil {
			bad("Queues: %v", err)
		}
	}
	if o.Concurrency < 1 {
		bad("Concurrency must be positive, got %d", o.Concurrency)
	}
	if o.Lease < spool.MinLeaseDuration || o.Lease > spool.MaxLeaseDuration {
		bad("Lease must be between %s and %s, got %s", spool.MinLeaseDuration, spool.MaxLeaseDuration, o.Lease)
	}
	if o.HeartbeatInterval <= 0 || o.HeartbeatInterval >= o.Lease {
		bad("HeartbeatInterval must be positive and shorter than Lease (%s), got %s", o.Lease, o.HeartbeatInterval)
	}
	if o.ProgressInterval < 0 {
		bad("ProgressInterval must not be negative, got %s", o.ProgressInterval)
	}
	if o.PollWait < 0 || o.PollWait > spool.MaxWait {
		bad("PollWait must be between 0 and %s, got %s", spool.MaxWait, o.PollWait)
	}
	if o.DefaultJobTimeout < 0 {
		bad("DefaultJobTimeout must not be negative, got %s", o.DefaultJobTimeout)
	}
	if o.ShutdownGrace < 0 {
		bad("ShutdownGrace must not be negative, got %s", o.ShutdownGrace)
	}
	if o.UnknownType != FailUnknown && o.UnknownType != ReleaseUnknown {
		bad("UnknownType %d is neither FailUnknown nor ReleaseUnknown", o.UnknownType)
	}
	if o.AckBatch < 1 || o.AckBatch > spool.DefaultLimits.MaxBatch {
		bad("AckBatch must be between 1 and %d, got %d", spool.DefaultLimits.MaxBatch, o.AckBatch)
	}
	if o.AckDelay < 0 {
		bad("AckDelay must not be negative, got %s", o.AckDelay)
	}
	if len(o.Name) > spool.MaxWorkerLen || !utf8.ValidString(o.Name) || strings.ContainsFunc(o.Name, unicode.IsControl) {
		bad("Name must be printable UTF-8 of at most %d bytes", spool.MaxWorkerLen)
	}
	return errors.Join(errs...)
}

// Worker leases jobs from a Spool server and runs them with the handlers
// registered for their types: many at once, with automatic heartbeats and
// batched acknowledgements. Register handlers with Handle, then call Run.
type Worker struct {
	c    *Client
	opts WorkerOptions
	log  *slog.Logger

	mu       sync.RWMutex
	handlers map[string]HandlerFunc
	fallback HandlerFunc

	started atomic.Bool
	// base is the parent of the handlers' contexts: ctx of Run without its
	// cancellation, so handlers outlive Run's ctx by the shutdown grace.
	base context.Context
	// slots holds a token per leased job (running or prefetched), at most
	// Concurrency + prefetch of them; freed signals a free slot. run holds
	// a token per running handler.
	slots chan struct{}
	// prefetch is the current prefetch: opts.Prefetch, or between it and
	// maxPrefetch when it adapts (see WorkerOptions.Prefetch).
	prefetch    atomic.Int64
	maxPrefetch int
	freed       chan struct{}
	run         chan struct{}
	// stopping is closed when leasing stops: prefetched jobs that have not
	// started are released rather than run.
	stopping chan struct{}
	// running counts handlers in progress (the ack batcher's hint).
	running atomic.Int64
	wg      sync.WaitGroup
	tasksMu sync.Mutex
	tasks   map[*task]struct{}
	acks    *acker
}

// NewWorker returns a Worker that takes jobs through c. The options are
// checked here; errors name the field at fault.
func NewWorker(c *Client, opts WorkerOptions) (*Worker, error) {
	if c == nil {
		return nil, errors.New("client: NewWorker: nil Client")
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	maxPrefetch := opts.Prefetch
	if opts.adaptive {
		maxPrefetch = max(opts.Prefetch, min(maxPrefetchFactor*opts.Concurrency, spool.DefaultLimits.MaxLease))
	}
	w := &Worker{
		c:           c,
		opts:        opts,
		log:         opts.Logger.With("worker", opts.Name),
		handlers:    make(map[string]HandlerFunc),
		slots:       make(chan struct{}, opts.Concurrency+maxPrefetch),
		maxPrefetch: maxPrefetch,
		freed:       make(chan struct{}, 1),
		run:         make(chan struct{}, opts.Concurrency),
		stopping:    make(chan struct{}),
		tasks:       make(map[*task]struct{}),
	}
	w.prefetch.Store(int64(opts.Prefetch))
	return w, nil
}

// growPrefetch doubles an adaptive prefetch, up to maxPrefetch.
func (w *Worker) growPrefetch() {
	for {
		p := w.prefetch.Load()
		n := min(max(2*p, 1), int64(w.maxPrefetch))
		if n == p || w.prefetch.CompareAndSwap(p, n) {
			return
		}
	}
}

// shrinkPrefetch halves an adaptive prefetch, down to opts.Prefetch.
func (w *Worker) shrinkPrefetch() {
	for {
		p := w.prefetch.Load()
		n := max(p/2, int64(w.opts.Prefetch))
		if n == p || w.prefetch.CompareAndSwap(p, n) {
			return
		}
	}
}

// Handle registers the handler of jobs of type typ. It panics if typ is
// empty, h is nil or typ already has a handler (as http.ServeMux does):
// those are mistakes in the program.
func (w *Worker) Handle(typ string, h HandlerFunc) {
	if typ == "" || h == nil {
		panic("client: Worker.Handle: empty type or nil handler")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.handlers[typ]; dup {
		panic(fmt.Sprintf("client: Worker.Handle: type %q already has a handler", typ))
	}
	w.handlers[typ] = h
}

// HandleDefault registers the handler of jobs whose type has no handler of
// its own; with it, WorkerOptions.UnknownType never applies.
func (w *Worker) HandleDefault(h HandlerFunc) {
	if h == nil {
		panic("client: Worker.HandleDefault: nil handler")
	}
	w.mu.Lock()
	w.fallback = h
	w.mu.Unlock()
}

func (w *Worker) handler(typ string) HandlerFunc {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if h, ok := w.handlers[typ]; ok {
		return h
	}
	return w.fallback
}

func (w *Worker) handledTypes() string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	types := make([]string, 0, len(w.handlers))
	for t := range w.handlers {
		types = append(types, strconv.Quote(t))
	}
	slices.Sort(types)
	return strings.Join(types, ", ")
}

// Run leases and runs jobs until ctx is done, then shuts down gracefully:
// it stops leasing, releases at once the prefetched jobs that have not
// started, lets running jobs finish for up to ShutdownGrace, then
// releases the jobs still running, so that another worker takes them at
// once with their attempt not counted, and cancels their handlers' contexts
// (cause ErrWorkerStopped). Run returns once every handler has returned and
// every outcome has been sent (or given up, if the server stays out of
// reach until the job's lease runs out): handlers must honour their
// context, or Run waits for them. No goroutine of the worker outlives Run;
// the Client's idle connections stay in its pool until Client.Close.
//
// Run returns nil after a shutdown, and an error if it cannot start (no
// handler registered, or Run called twice). Failures to reach the server
// are logged and retried with backoff; they do not end Run.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("client: Worker.Run called more than once")
	}
	w.mu.RLock()
	none := len(w.handlers) == 0 && w.fallback == nil
	w.mu.RUnlock()
	if none {
		return errors.New("client: Worker.Run: no handler registered; call Handle or HandleDefault first")
	}
	base, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	w.base = base
	w.acks = newAcker(w.c, w.log, w.opts.AckBatch, w.opts.AckDelay, func() bool { return w.running.Load() > 0 })
	go w.acks.run()

	w.log.Info("worker started", "queues", w.opts.Queues, "concurrency", w.opts.Concurrency, "lease", w.opts.Lease)
	w.leaseLoop(ctx)
	w.shutdown()
	w.acks.close()
	w.log.Info("worker stopped")
	return nil
}

// leaseLoop leases jobs for the free slots, one long-polled request at a
// time, until ctx is done.
func (w *Worker) leaseLoop(ctx context.Context) {
	lease := spool.Duration(w.opts.Lease)
	wait := spool.Duration(w.opts.PollWait)
	var failures, idleReleases int
	for {
		free := w.waitFree(ctx)
		if free == 0 {
			return
		}
		req := spool.LeaseRequest{Queues: w.opts.Queues, Max: min(free, spool.DefaultLimits.MaxLease),
			Wait: &wait, Lease: &lease, Worker: w.opts.Name}
		leasedAt := time.Now()
		heldAtSend := len(w.slots)
		jobs, err := w.c.Lease(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			d := pauseFor(failures, 100*time.Millisecond, 5*time.Second, w.c.rand())
			if errors.Is(err, spool.ErrInvalid) {
				// Not a passing failure: say so loudly (a server whose
				// Limits.MaxLease is below Concurrency, say).
				w.log.Error("the server refused the lease request; retrying", "error", err, "retry_in", d)
			} else {
				w.log.Warn("leasing failed; retrying", "error", err, "retry_in", d)
			}
			if sleepCtx(ctx, d) != nil {
				return
			}
			continue
		}
		failures = 0
		if w.opts.adaptive && heldAtSend > 0 && len(jobs) == req.Max && len(w.slots) < w.opts.Concurrency {
			// The handlers had jobs when the request left and ran out
			// before its answer came, which was full: lease further
			// ahead. (An idle worker's first lease proves nothing.)
			w.growPrefetch()
		}
		// Jobs leased as ctx ended are ours all the same: the shutdown
		// runs or releases them.
		started := 0
		for _, j := range jobs {
			if w.start(j, leasedAt) {
				started++
			}
		}
		if len(jobs) > 0 && started == 0 && w.opts.UnknownType == ReleaseUnknown {
			// Only jobs for other pools: let them have a go.
			idleReleases++
			if sleepCtx(ctx, pauseFor(idleReleases, 50*time.Millisecond, 2*time.Second, 1)) != nil {
				return
			}
		} else if started > 0 {
			idleReleases = 0
		}
	}
}

// pauseFor is the n-th (n >= 1) wait of a capped exponential backoff with
// jitter in [d/2, d].
func pauseFor(n int, base, ceil time.Duration, rnd float64) time.Duration {
	d := ceil
	if n < 32 {
		d = min(base<<(n-1), ceil)
	}
	return d/2 + time.Duration(rnd*float64(d/2))
}

// waitFree waits until slots are free and returns how many are, or 0 once
// ctx is done. It returns as soon as one is free while fewer jobs are held
// than Concurrency (a handler slot would idle otherwise); while prefetched
// jobs are at hand, it waits until half the slots are free, so that leases
// come in batches rather than one job at a time.
func (w *Worker) waitFree(ctx context.Context) int {
	for {
		if ctx.Err() != nil {
			return 0
		}
		held := len(w.slots)
		limit := w.opts.Concurrency + int(w.prefetch.Load())
		if free := limit - held; free > 0 && (held < w.opts.Concurrency || free >= (limit+1)/2) {
			return free
		}
		select {
		case <-w.freed:
		case <-ctx.Done():
			return 0
		}
	}
}

// start runs a leased job in its own goroutine, or settles it at once when
// no handler takes its type. It reports whether a handler runs it.
func (w *Worker) start(j *spool.Job, leasedAt time.Time) bool {
	until := leasedAt.Add(w.opts.Lease)
	h := w.handler(j.Type)
	if h == nil {
		w.unknown(j, until)
		return false
	}
	w.slots <- struct{}{} // never blocks: no more jobs were leased than slots were free
	t := w.newTask(j, until)
	w.tasksMu.Lock()
	w.tasks[t] = struct{}{}
	w.tasksMu.Unlock()
	w.wg.Add(1)
	go w.runTask(t, h)
	return true
}

// unknown settles a job no handler takes, as UnknownType says.
func (w *Worker) unknown(j *spool.Job, until time.Time) {
	a := spool.Ack{ID: j.ID, Token: j.Lease.Token}
	if w.opts.UnknownType == ReleaseUnknown {
		a.Outcome = spool.OutcomeRelease
		w.log.Debug("releasing a job of a type this worker does not handle", "job_id", j.ID, "type", j.Type)
	} else {
		a.Outcome = spool.OutcomeFail
		a.Error = fmt.Sprintf("no handler for job type %q in worker %s (it handles %s); run a worker that handles it on queue %q, or set WorkerOptions.UnknownType to ReleaseUnknown in workers that share the queue",
			j.Type, w.opts.Name, w.handledTypes(), j.Queue)
		a.Error = cutUTF8(a.Error, spool.MaxErrorLen)
		w.log.Warn("failing a job of a type this worker does not handle", "job_id", j.ID, "type", j.Type)
	}
	w.acks.add(ackItem{ack: a, until: until})
}

// done frees a finished task's slot.
func (w *Worker) done(t *task) {
	w.tasksMu.Lock()
	delete(w.tasks, t)
	w.tasksMu.Unlock()
	<-w.slots
	select {
	case w.freed <- struct{}{}:
	default:
	}
}

// shutdown waits up to the grace period for running jobs, then releases
// the rest and cancels their handlers, and waits for every handler.
func (w *Worker) shutdown() {
	close(w.stopping)
	finished := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(finished)
	}()
	w.tasksMu.Lock()
	n := len(w.tasks)
	w.tasksMu.Unlock()
	if n > 0 {
		w.log.Info("worker stopping: leasing stopped, waiting for running jobs", "running", n, "grace", w.opts.ShutdownGrace)
	}
	grace := time.NewTimer(w.opts.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-finished:
		return
	case <-grace.C:
	}
	w.tasksMu.Lock()
	left := make([]*task, 0, len(w.tasks))
	for t := range w.tasks {
		left = append(left, t)
	}
	w.tasksMu.Unlock()
	released := 0
	for _, t := range left {
		if t.settle() {
			w.acks.add(ackItem{ack: spool.Ack{ID: t.job.ID, Token: t.token, Outcome: spool.OutcomeRelease}, until: t.leaseUntil()})
			released++
		}
		t.cancel(ErrWorkerStopped)
	}
	w.log.Info("shutdown grace over: released the jobs still running", "released", released, "grace", w.opts.ShutdownGrace)
	<-finished
}
