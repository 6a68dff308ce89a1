// Package engine holds Spool's queue semantics, independent of storage:
// admission and back pressure, the job state machine, the retry policy,
// long-poll waiters, topic fan-out, the job event log of GET /v1/events, and
// the maintenance loops that promote due jobs, expire leases and purge
// finished jobs. It decides; the store applies atomically.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/diskspace"
	"github.com/spoolq/spool/internal/store"
)

// Defaults are the queue settings in force where a queue's config is silent.
type Defaults struct {
	MaxDepth    int64
	Retention   time.Duration
	MaxAttempts int
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Lease is the lease duration when a lease request or heartbeat names none.
	Lease time.Duration
	// DropUnrouted makes a publish whose messages no subscription takes an
	// accepted no-op (202, no jobs). By default it is refused with
	// spool.ErrNoSubscribers (404 no_subscribers), so that a typo in a
	// topic name does not silently lose messages.
	DropUnrouted bool
}

// DefaultDefaults are Spool's out-of-the-box queue settings.
var DefaultDefaults = Defaults{
	MaxDepth:    1_000_000,
	Retention:   24 * time.Hour,
	MaxAttempts: 25,
	BackoffBase: 5 * time.Second,
	BackoffMax:  time.Hour,
	Lease:       60 * time.Second,
}

// Filled returns d with every zero setting taken from DefaultDefaults: the
// one place queue defaults are filled in.
func (d Defaults) Filled() Defaults {
	dd := DefaultDefaults
	if d.MaxDepth == 0 {
		d.MaxDepth = dd.MaxDepth
	}
	if d.Retention == 0 {
		d.Retention = dd.Retention
	}
	if d.MaxAttempts == 0 {
		d.MaxAttempts = dd.MaxAttempts
	}
	if d.BackoffBase == 0 {
		d.BackoffBase = dd.BackoffBase
	}
	if d.BackoffMax == 0 {
		d.BackoffMax = dd.BackoffMax
	}
	if d.Lease == 0 {
		d.Lease = dd.Lease
	}
	return d
}

// Config configures an Engine. Zero fields take defaults.
type Config struct {
	Store    store.Store
	Clock    Clock
	Logger   *slog.Logger
	Defaults Defaults
	// Rand returns a uniform float in [0,1) for retry jitter.
	Rand func() float64
	// NewID returns a new job id (default: UUIDv7).
	NewID func() string
	// NewToken returns a new lease token (default: 128 random bits).
	NewToken func() string
	// MaintenanceInterval is the longest gap between maintenance passes
	// (default 1s); due jobs are promoted on time regardless.
	MaintenanceInterval time.Duration
	// ConfigTTL bounds how long a queue's config is cached (default 2s).
	ConfigTTL time.Duration
	// RecheckInterval applies when the store is shared by several nodes
	// (it implements store.Notifier): every long-poll looks again at this
	// interval even if no wake-up came, a safety net for wake-ups lost
	// with a node that died between its commit and its notification
	// (default DefaultRecheckInterval). Unused with other stores.
	RecheckInterval time.Duration
	// Metrics receives counters and histograms; nil disables them.
	Metrics *Metrics
	// EventLog is how many job events are kept for streams that resume
	// (default DefaultEventLog).
	EventLog int
	// TelemetryFlush is how often this node adds its telemetry counts to
	// the store (default DefaultTelemetryFlush); see telemetry.go.
	TelemetryFlush time.Duration
	// DisableTelemetry turns the telemetry off: nothing is counted or
	// stored, and the stats read what earlier runs stored (for
	// measuring its cost; see telemetry.go).
	DisableTelemetry bool
	// DiskSpace guards the free space of the embedded store's volume:
	// below its mark, enqueues and publishes are refused with
	// spool.DiskFullError. Nil: no guard (a PostgreSQL store's disk is
	// the database server's).
	DiskSpace *diskspace.Guard
	// Budget caps the queues and the jobs not yet finished across all
	// queues (zero fields: no cap).
	Budget Budget
	// UsageTTL bounds how long a reading of the store's usage is reused
	// for the budget (default DefaultUsageTTL).
	UsageTTL time.Duration
}

func (c *Config) fill() error {
	if c.Store == nil {
		return errors.New("engine: Config.Store is required")
	}
	if c.Clock == nil {
		c.Clock = RealClock
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Defaults = c.Defaults.Filled()
	if c.Rand == nil {
		c.Rand = mrand.Float64
	}
	if c.NewID == nil {
		c.NewID = newID
	}
	if c.NewToken == nil {
		c.NewToken = newToken
	}
	if c.MaintenanceInterval <= 0 {
		c.MaintenanceInterval = time.Second
	}
	if c.ConfigTTL <= 0 {
		c.ConfigTTL = 2 * time.Second
	}
	if c.UsageTTL <= 0 {
		c.UsageTTL = DefaultUsageTTL
	}
	if c.RecheckInterval <= 0 {
		c.RecheckInterval = DefaultRecheckInterval
	}
	if c.TelemetryFlush <= 0 {
		c.TelemetryFlush = DefaultTelemetryFlush
	}
	return nil
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Engine applies Spool's queue rules on top of a Store.
type Engine struct {
	cfg   Config
	st    store.Store
	clock Clock
	log   *slog.Logger
	m     *Metrics
	hub   *hub
	tele  telemetry
	// drains caches the throughput Retry-After divides by (queues.go).
	drainMu sync.Mutex
	drains  map[string]cachedRate

	cfgMu  sync.Mutex
	cfgTab map[string]cachedConfig

	// usageCache is the store's usage for the budget (admit.go).
	usageCache usageCache

	// wake tells the maintenance loop that a job became due earlier than
	// it planned for.
	wake chan struct{}

	lifeMu  sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	stopped chan struct{} // closed by Stop: long-polls return at once
	stopOne sync.Once

	// events holds the latest job events for GET /v1/events.
	events *eventLog
	// deps holds finished jobs whose waiting children are to be resolved.
	deps *depQueue

	// sched wakes the cron scheduler loop when a schedule changes.
	sched scheduleWake
}

type cachedConfig struct {
	cfg     spool.QueueConfig // resolved: every field set
	fetched time.Time
	exists  bool // the store has the queue
}

// New returns an Engine. Call Start to run its maintenance loop.
func New(cfg Config) (*Engine, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Engine{
		cfg:     cfg,
		st:      cfg.Store,
		clock:   cfg.Clock,
		log:     cfg.Logger,
		m:       cfg.Metrics,
		hub:     newHub(),
		cfgTab:  make(map[string]cachedConfig),
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
		events:  newEventLog(cfg.EventLog),
		deps:    newDepQueue(),
		tele:    telemetry{off: cfg.DisableTelemetry},
	}, nil
}

// Store returns the engine's store.
func (e *Engine) Store() store.Store { return e.st }

// Defaults returns the queue defaults in force.
func (e *Engine) Defaults() Defaults { return e.cfg.Defaults }

// Start runs the maintenance loop until Stop or ctx ends, and, when the
// store is shared by several nodes (store.Notifier), the loops that bring
// the other nodes' wake-ups (see cluster.go). Calling it twice is an error.
func (e *Engine) Start(ctx context.Context) error {
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	if e.done != nil {
		return errors.New("engine: already started")
	}
	ctx, e.cancel = context.WithCancel(ctx)
	e.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { e.maintenanceLoop(ctx) })
	wg.Go(func() { e.dependencyLoop(ctx) })
	wg.Go(func() { e.scheduleLoop(ctx) })
	if !e.cfg.DisableTelemetry {
		wg.Go(func() { e.telemetryLoop(ctx) })
	}
	if n, ok := e.notifier(); ok {
		wg.Go(func() { e.listenLoop(ctx, n) })
		wg.Go(func() { e.recheckLoop(ctx) })
	}
	go func() {
		wg.Wait()
		close(e.done)
	}()
	return nil
}

// Stop ends the engine's loops, waits for them, and makes waiting
// long-polls return. It is idempotent. The store stays open: close it after.
func (e *Engine) Stop() {
	e.stopOne.Do(func() { close(e.stopped) })
	e.hub.wakeAll()
	e.lifeMu.Lock()
	cancel, done := e.cancel, e.done
	e.lifeMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// queueConfig returns a queue's resolved config (defaults filled in).
func (e *Engine) queueConfig(ctx context.Context, name string) (spool.QueueConfig, error) {
	now := e.clock.Now()
	e.cfgMu.Lock()
	c, ok := e.cfgTab[name]
	e.cfgMu.Unlock()
	if ok && now.Sub(c.fetched) < e.cfg.ConfigTTL && now.Sub(c.fetched) >= 0 {
		return c.cfg, nil
	}
	var over spool.QueueConfig
	q, err := e.st.Queue(ctx, name)
	exists := err == nil
	switch {
	case err == nil:
		over = q.Config
	case errors.Is(err, spool.ErrNotFound):
	default:
		return spool.QueueConfig{}, fmt.Errorf("reading config of queue %q: %w", name, err)
	}
	res := e.resolve(over)
	e.cfgMu.Lock()
	e.cfgTab[name] = cachedConfig{cfg: res, fetched: now, exists: exists}
	e.cfgMu.Unlock()
	return res, nil
}

// newQueues counts the queues among names (distinct) that did not exist
// when their config was last read (queueConfig must have been called for
// each).
func (e *Engine) newQueues(names ...string) int {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	n := 0
	for i, q := range names {
		if c, ok := e.cfgTab[q]; ok && !c.exists && !slices.Contains(names[:i], q) {
			n++
		}
	}
	return n
}

// queuesExist records that the queues now exist (an insert created them).
func (e *Engine) queuesExist(names ...string) {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	for _, q := range names {
		if c, ok := e.cfgTab[q]; ok {
			c.exists = true
			e.cfgTab[q] = c
		}
	}
}

func (e *Engine) forgetConfig(name string) {
	e.cfgMu.Lock()
	delete(e.cfgTab, name)
	e.cfgMu.Unlock()
}

// resolve fills a config's unset fields from the defaults.
func (e *Engine) resolve(over spool.QueueConfig) spool.QueueConfig {
	d := e.cfg.Defaults
	r := spool.QueueConfig{
		MaxDepth:    ptr(d.MaxDepth),
		Retention:   ptr(spool.Duration(d.Retention)),
		Paused:      ptr(false),
		MaxAttempts: ptr(d.MaxAttempts),
		Backoff:     &spool.Backoff{Base: spool.Duration(d.BackoffBase), Max: spool.Duration(d.BackoffMax)},
	}
	if over.MaxDepth != nil {
		r.MaxDepth = ptr(*over.MaxDepth)
	}
	if over.Retention != nil {
		r.Retention = ptr(*over.Retention)
	}
	if over.Paused != nil {
		r.Paused = ptr(*over.Paused)
	}
	if over.MaxAttempts != nil {
		r.MaxAttempts = ptr(*over.MaxAttempts)
	}
	if b := over.Backoff; b != nil {
		if b.Base > 0 {
			r.Backoff.Base = b.Base
		}
		if b.Max > 0 {
			r.Backoff.Max = b.Max
		}
	}
	resolveFlow(&r, over)
	r.DeadLetterQueue = ptr("")
	if over.DeadLetterQueue != nil {
		r.DeadLetterQueue = ptr(*over.DeadLetterQueue)
	}
	if len(over.Attributes) > 0 {
		r.Attributes = maps.Clone(over.Attributes)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

// newID is the default job id: a UUIDv7 (time-ordered, so ids sort by
// creation and the stores' id bounds hold).
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Ids draw their random bits from the uuid package's pool, refilled 256
// bytes at a time from crypto/rand, instead of reading crypto/rand into a
// new heap array for every id: one allocation and most getrandom calls
// less per job. Ids name jobs; they are not secrets (lease tokens are, and
// come from crypto/rand directly). The pool may only be switched on while
// nothing makes UUIDs, hence init.
func init() { uuid.EnableRandPool() }

// ownedView is view without any copy, for a record the caller owns and
// drops (a store's answer, used once): it returns the record's own job,
// its lease cleared in place.
func ownedView(r *store.Record) *spool.Job {
	r.Lease = nil
	return &r.Job
}

// view returns the API view of a record: a copy without lease secrets.
func view(r *store.Record) *spool.Job {
	j := store.CloneJob(&r.Job)
	j.Lease = nil
	return &j
}

// mutate reads a job, lets fn change it, and writes it back with a
// compare-and-set, retrying when another writer got there first. fn returns
// an error to abandon the change.
func (e *Engine) mutate(ctx context.Context, id string, fn func(r *store.Record) error) (*store.Record, error) {
	for try := 0; ; try++ {
		rec, err := e.st.Get(ctx, id)
		if err != nil {
			return nil, e.notFound(id, err)
		}
		if err := fn(rec); err != nil {
			return nil, err
		}
		recs, errs, err := e.update(ctx, []store.Change{{Record: rec}})
		if err != nil {
			return nil, fmt.Errorf("updating job %s: %w", id, err)
		}
		if errs[0] == nil {
			return recs[0], nil
		}
		if !errors.Is(errs[0], spool.ErrConflict) || try >= 8 {
			return nil, e.notFound(id, errs[0])
		}
	}
}

func (e *Engine) notFound(id string, err error) error {
	if errors.Is(err, spool.ErrNotFound) {
		return spool.NotFoundf("no job with id %q", id)
	}
	return err
}
