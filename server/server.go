// Package server is Spool's HTTP server: the API v1, health and readiness,
// metrics and the OpenAPI document. It decodes, validates, calls the engine
// and maps errors; queue rules live in the engine. Go programs can embed the
// broker in-process with New.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
	"github.com/spoolq/spool/internal/dashboard"
	"github.com/spoolq/spool/internal/diskspace"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/gctune"
	"github.com/spoolq/spool/internal/servertest"
	"github.com/spoolq/spool/internal/sqs"
	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/open"
	"github.com/spoolq/spool/internal/webhook"
)

// QueueDefaults are the queue settings in force where a queue's own config
// (PATCH /v1/queues/{queue}) is silent.
type QueueDefaults struct {
	// MaxDepth is the most jobs not yet finished a queue holds.
	MaxDepth int64
	// Retention is how long finished jobs are kept.
	Retention time.Duration
	// MaxAttempts is a job's attempts before it is dead.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the delay before a retry.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Lease is the lease duration when a lease request or heartbeat names
	// none.
	Lease time.Duration
	// DropUnrouted makes a publish whose messages no subscription takes an
	// accepted no-op (202, no jobs). By default it is refused (404
	// no_subscribers), so that a typo in a topic name loses no message.
	DropUnrouted bool
}

// DefaultQueueDefaults are Spool's out-of-the-box queue settings.
var DefaultQueueDefaults = QueueDefaults(engine.DefaultDefaults)

// Clock tells the time. The server asks it, never time.Now, for
// scheduling, leases, retries and purges, so a program (or a test) may
// move time by hand.
type Clock interface {
	Now() time.Time
}

// Config configures a Server. Zero fields take defaults.
type Config struct {
	// Addr is the listen address for ListenAndServe (default 127.0.0.1:7077).
	Addr string
	// DataDir is the embedded store's directory (default ./spool-data).
	// Unused when Store names a database.
	DataDir string
	// Store is the URL of a PostgreSQL database (postgres://... or
	// postgresql://...) that this node shares with any number of other
	// nodes; "" (the default) means the embedded store in DataDir. The
	// URL's search_path parameter names the schema of the tables (one
	// schema; default public); pool_max_conns sizes the connection pool
	// (default DefaultStoreMaxConns). Pending migrations are applied at
	// start.
	Store string
	// Limits bound request sizes and counts (default spool.DefaultLimits).
	Limits spool.Limits
	// Defaults are the queue defaults; zero fields take those of
	// DefaultQueueDefaults.
	Defaults QueueDefaults
	// Logger receives the server's logs (default: discard).
	Logger *slog.Logger
	// ShutdownTimeout bounds the graceful shutdown (default 30s).
	ShutdownTimeout time.Duration
	// RequestTimeout bounds the work of one request, long-poll waits not
	// counted: a lease or status request may wait up to spool.MaxWait on
	// top of it (default 30s).
	RequestTimeout time.Duration
	// BodyReadTimeout bounds the time a request body may take to arrive
	// (default 30s); a body still incomplete then is answered 408. It is
	// far shorter than the read deadline of a long-poll, which covers the
	// whole wait.
	BodyReadTimeout time.Duration
	// MaxBodyMemory bounds the buffer memory that all request bodies being
	// read hold together (default 256 MiB, and at least
	// Limits.MaxBodyBytes). A body beyond it is refused with 503
	// server_busy and Retry-After.
	MaxBodyMemory int64
	// Clock overrides the wall clock (default: the wall clock, in UTC).
	Clock Clock
	// WebhookSecret signs webhook deliveries (spool.WebhookSignatureHeader)
	// and enables them: with a secret the server runs the delivery loop of
	// the internal queue _spool.webhooks; without one, an enqueue with a
	// callback_url is refused (400).
	WebhookSecret string
	// WebhookAllow lists the targets deliveries may reach although they
	// are loopback, link-local or private: CIDR prefixes, addresses or
	// host names.
	WebhookAllow []string
	// WebhookTimeout bounds one delivery (default 10s).
	WebhookTimeout time.Duration
	// MinFreeSpace is the free-space low-water mark of the embedded
	// store's volume: below it enqueues and publishes are refused (503,
	// code disk_full) until space is freed; reads, leases, acks, cancels
	// and purges go on. A size ("512MiB", "2GB", bytes), a percentage of
	// the volume ("5%"), "0" for no mark, or "" for the default: the
	// smaller of 1 GiB and 5% of the volume. Unused with PostgreSQL.
	MinFreeSpace string
	// DiskStat reads the free space of the data directory's volume
	// (default: statfs; tests).
	DiskStat diskspace.StatFunc
	// SQSAddr, when set, is where ListenAndServe also serves the Amazon
	// SQS API (see docs/sqs.md); "" leaves it off. ServeSQS serves it on
	// a listener of the caller's.
	SQSAddr string
	// SQSRegion is the region in the ARNs of the SQS API (default
	// us-east-1).
	SQSRegion string

	// AllowedHosts are host names (besides IP addresses, localhost and the
	// host of Addr) that the Host header may carry while the server runs
	// without API keys: a page that rebinds another name to this machine
	// is refused.
	AllowedHosts []string
	// InsecureOpenOnTrustedNetwork lets Serve run without any API key on
	// an address beyond loopback. Anyone who can reach the port may then
	// do anything; meant for a private network that is trusted whole.
	InsecureOpenOnTrustedNetwork bool
	// SecretKey (64 hex digits) encrypts new keys' secrets so that they
	// can sign SQS API requests (SigV4); without it keys are stored as
	// hashes only and SigV4 is unavailable. SecretKeyFile names a file
	// holding it instead.
	SecretKey     string
	SecretKeyFile string
	// AuthFailures is how many failed authentications a client address
	// may make per minute before it is answered 429 (default 10).
	AuthFailures int
	// MaxQueues caps the number of queues on the server (cluster-wide on
	// PostgreSQL): a new queue beyond it is refused with 507
	// too_many_queues (default DefaultMaxQueues).
	MaxQueues int64
	// MaxJobs caps the jobs not yet finished across all queues
	// (cluster-wide on PostgreSQL): more are refused with 503 server_full
	// and Retry-After. Default: on the embedded store, which keeps about
	// 1 KiB of memory per such job, a quarter of the memory the process
	// may use at that rate (at least DefaultMinMaxJobs); on PostgreSQL
	// DefaultMaxJobsPostgres.
	MaxJobs int64
	// AuditRetention is how long audit log entries are kept (default 90
	// days).
	AuditRetention time.Duration
	// MaxPayloadStored caps the payload bytes of the jobs not yet finished
	// across all queues (cluster-wide on PostgreSQL): more are refused
	// with 503 storage_full and Retry-After. Default: on the embedded
	// store, half the size of the data directory's volume; on PostgreSQL
	// DefaultMaxPayloadStoredPostgres.
	MaxPayloadStored int64
	// TLSCert and TLSKey (PEM files) make Serve speak HTTPS, TLS 1.2 or
	// later. TLSClientCA (a PEM file) then requires client certificates
	// signed by it (mutual TLS).
	TLSCert, TLSKey, TLSClientCA string
	// ReadHeaderTimeout bounds the time a client may take to send a
	// request's headers (default 10s); IdleTimeout how long a keep-alive
	// connection may sit idle between requests (default 2m).
	ReadHeaderTimeout, IdleTimeout time.Duration
	// BootstrapKeyFile, when set and the store holds no API key yet, makes
	// New create an admin key and write its secret to this file (created,
	// mode 0600; an existing file is refused): the first key of a
	// container, without a shell. Once any key exists it does nothing.
	BootstrapKeyFile string
	// MaxConnections caps the connections held at once; beyond it a new
	// connection is answered 503 server_busy and closed (default
	// DefaultMaxConnections).
	MaxConnections int
	// MaxHeaderBytes bounds the size of a request's headers (default
	// DefaultMaxHeaderBytes, at least 4 KiB); larger ones are answered
	// 431 too_large.
	MaxHeaderBytes int
	// MaxWaitsPerKey caps the long-polls (lease and job waits) and event
	// streams one key, or without keys one client address, holds at once;
	// beyond it they are answered 429 too_many_waits (default
	// DefaultMaxWaitsPerKey).
	MaxWaitsPerKey int
}

// Defaults of Config.
const (
	DefaultAddr            = "127.0.0.1:7077"
	DefaultDataDir         = "./spool-data"
	DefaultShutdownTimeout = 30 * time.Second
	DefaultRequestTimeout  = 30 * time.Second
	DefaultBodyReadTimeout = 30 * time.Second
	DefaultMaxBodyMemory   = 256 << 20
	// DefaultMaxHeaderBytes is Config.MaxHeaderBytes's default.
	DefaultMaxHeaderBytes = 64 << 10
	// minHeaderBytes is the least Config.MaxHeaderBytes may be.
	minHeaderBytes         = 4 << 10
	DefaultWebhookTimeout  = 10 * time.Second
	DefaultMaxQueues       = 10_000
	DefaultMinMaxJobs      = 100_000
	DefaultMaxJobsPostgres = 10_000_000
	// DefaultMaxPayloadStoredPostgres is the default MaxPayloadStored on
	// PostgreSQL, and on the embedded store when its volume cannot be read.
	DefaultMaxPayloadStoredPostgres = 100 << 30
	// embeddedBytesPerJob is what the default MaxJobs of the embedded
	// store counts per job not yet finished (its in-memory indexes take
	// about half of it).
	embeddedBytesPerJob = 1 << 10
	// DefaultStoreMaxConns is the connection pool size of a PostgreSQL
	// store whose URL sets no pool_max_conns.
	DefaultStoreMaxConns = open.DefaultMaxConns
	// storeOpenTimeout bounds connecting to the database and migrating it
	// at start.
	storeOpenTimeout = time.Minute
)

// HTTP server timeouts. A long-poll holds its request open up to
// spool.MaxWait, so the read and write deadlines of a connection must
// outlast the longest request (a read deadline that passes while a handler
// waits cancels the request's context).
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	deadlineMargin    = 30 * time.Second
)

// WithDefaults returns the config with every zero field filled in: the
// one place the server's defaults are decided (queue defaults come from
// DefaultQueueDefaults). Negative values are left for Validate to refuse.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	l, dl := &c.Limits, spool.DefaultLimits
	if l.MaxPayloadBytes == 0 {
		l.MaxPayloadBytes = dl.MaxPayloadBytes
	}
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = dl.MaxBodyBytes
	}
	if l.MaxBatch == 0 {
		l.MaxBatch = dl.MaxBatch
	}
	if l.MaxLease == 0 {
		l.MaxLease = dl.MaxLease
	}
	c.Defaults = QueueDefaults(engine.Defaults(c.Defaults).Filled())
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.BodyReadTimeout == 0 {
		c.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if c.MaxBodyMemory == 0 {
		c.MaxBodyMemory = max(DefaultMaxBodyMemory, c.Limits.MaxBodyBytes)
	}
	if c.WebhookTimeout == 0 {
		c.WebhookTimeout = DefaultWebhookTimeout
	}
	if c.MaxQueues == 0 {
		c.MaxQueues = DefaultMaxQueues
	}
	if c.MaxJobs == 0 {
		c.MaxJobs = defaultMaxJobs(c.Store != "", gctune.Memory())
	}
	if c.MaxPayloadStored == 0 {
		c.MaxPayloadStored = defaultMaxPayloadStored(c.Store != "", c.DataDir)
	}
	if c.Clock == nil {
		c.Clock = engine.RealClock
	}
	if c.AuthFailures == 0 {
		c.AuthFailures = DefaultAuthFailures
	}
	if c.AuditRetention == 0 {
		c.AuditRetention = DefaultAuditRetention
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = readHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = idleTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxWaitsPerKey == 0 {
		c.MaxWaitsPerKey = DefaultMaxWaitsPerKey
	}
	return c
}

// ConfigError is a setting of Config that cannot be used. Field names it
// as in Go ("Defaults.MaxDepth"), so that a program (the spool command)
// can say which of its own settings is at fault.
type ConfigError struct {
	Field string
	// Problem says what is wrong, to follow the field's name: "must be
	// between 1 and 1000, got 0".
	Problem string
}

func (e *ConfigError) Error() string { return "server: Config." + e.Field + " " + e.Problem }

// ConfigErrors lists every *ConfigError in err (Validate joins them).
func ConfigErrors(err error) []*ConfigError {
	var out []*ConfigError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *ConfigError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// Validate checks a config filled by WithDefaults. The error joins a
// *ConfigError per setting at fault (see ConfigErrors).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("Addr", "%q is not host:port: %v", c.Addr, err)
	}
	if err := open.Check(c.Store); err != nil {
		bad("Store", "%v", err)
	}
	l := c.Limits
	if l.MaxPayloadBytes > 0 && l.MaxBodyBytes > 0 && int64(l.MaxPayloadBytes) > l.MaxBodyBytes {
		bad("Limits.MaxPayloadBytes", "(%d) exceeds Limits.MaxBodyBytes (%d): no request could carry such a payload", l.MaxPayloadBytes, l.MaxBodyBytes)
	}
	d := c.Defaults
	if d.MaxDepth < 0 || d.MaxDepth > spool.MaxQueueDepthCeil {
		bad("Defaults.MaxDepth", "must be between 1 and %d, got %d", spool.MaxQueueDepthCeil, d.MaxDepth)
	}
	if d.Retention < time.Second || d.Retention > spool.MaxRetention {
		bad("Defaults.Retention", "must be between 1s and %s, got %s", spool.MaxRetention, d.Retention)
	}
	if d.MaxAttempts < 0 || d.MaxAttempts > spool.MaxMaxAttempts {
		bad("Defaults.MaxAttempts", "must be between 1 and %d, got %d", spool.MaxMaxAttempts, d.MaxAttempts)
	}
	if d.BackoffBase < 0 || d.BackoffBase > spool.MaxBackoffDelay {
		bad("Defaults.BackoffBase", "must be between 0 and %s, got %s", spool.MaxBackoffDelay, d.BackoffBase)
	}
	if d.BackoffMax < 0 || d.BackoffMax > spool.MaxBackoffDelay {
		bad("Defaults.BackoffMax", "must be between 0 and %s, got %s", spool.MaxBackoffDelay, d.BackoffMax)
	}
	if d.BackoffBase > d.BackoffMax {
		bad("Defaults.BackoffBase", "(%s) exceeds Defaults.BackoffMax (%s)", d.BackoffBase, d.BackoffMax)
	}
	if d.Lease < spool.MinLeaseDuration || d.Lease > spool.MaxLeaseDuration {
		bad("Defaults.Lease", "must be between %s and %s, got %s", spool.MinLeaseDuration, spool.MaxLeaseDuration, d.Lease)
	}
	if c.MaxBodyMemory < 0 {
		bad("MaxBodyMemory", "must not be negative, got %d", c.MaxBodyMemory)
	} else if l.MaxBodyBytes > 0 && c.MaxBodyMemory < l.MaxBodyBytes {
		bad("MaxBodyMemory", "(%d) is below Limits.MaxBodyBytes (%d): no request could carry a body of the limit", c.MaxBodyMemory, l.MaxBodyBytes)
	}
	if _, err := webhook.ParseAllowlist(c.WebhookAllow); err != nil {
		bad("WebhookAllow", "%v", err)
	}
	if len(c.WebhookAllow) > 0 && c.WebhookSecret == "" {
		bad("WebhookAllow", "is set but WebhookSecret is empty: webhooks are off without a secret")
	}
	if c.MaxHeaderBytes < minHeaderBytes || c.MaxHeaderBytes > 16<<20 {
		bad("MaxHeaderBytes", "must be between %d and %d bytes, got %d", minHeaderBytes, 16<<20, c.MaxHeaderBytes)
	}
	if _, err := loadTLS(c); err != nil {
		bad("TLSCert", "%v", err)
	}
	if _, err := auth.LoadSealer(c.SecretKeyFile, c.SecretKey); err != nil {
		bad("SecretKey", "%v", err)
	}
	if _, err := diskspace.ParseMark(c.MinFreeSpace); err != nil {
		bad("MinFreeSpace", "%v", err)
	}
	if c.SQSAddr != "" {
		if _, _, err := net.SplitHostPort(c.SQSAddr); err != nil {
			bad("SQSAddr", "%q is not host:port: %v", c.SQSAddr, err)
		}
	}
	// Settings that only must not be negative (0 takes the default).
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"ShutdownTimeout", c.ShutdownTimeout}, {"RequestTimeout", c.RequestTimeout},
		{"BodyReadTimeout", c.BodyReadTimeout}, {"ReadHeaderTimeout", c.ReadHeaderTimeout},
		{"IdleTimeout", c.IdleTimeout}, {"AuditRetention", c.AuditRetention},
		{"WebhookTimeout", c.WebhookTimeout},
	} {
		if f.d < 0 {
			bad(f.name, "must not be negative, got %s", f.d)
		}
	}
	for _, f := range []struct {
		name string
		n    int64
	}{
		{"Limits.MaxPayloadBytes", int64(l.MaxPayloadBytes)}, {"Limits.MaxBodyBytes", l.MaxBodyBytes},
		{"Limits.MaxBatch", int64(l.MaxBatch)}, {"Limits.MaxLease", int64(l.MaxLease)},
		{"MaxConnections", int64(c.MaxConnections)}, {"MaxWaitsPerKey", int64(c.MaxWaitsPerKey)},
		{"AuthFailures", int64(c.AuthFailures)}, {"MaxQueues", c.MaxQueues},
		{"MaxJobs", c.MaxJobs}, {"MaxPayloadStored", c.MaxPayloadStored},
	} {
		if f.n < 0 {
			bad(f.name, "must not be negative, got %d", f.n)
		}
	}
	return errors.Join(errs...)
}

// Server is a running Spool broker: store, engine and HTTP handler.
type Server struct {
	cfg    Config
	log    *slog.Logger
	store  store.Store
	engine *engine.Engine
	hooks  *webhook.Dispatcher // nil without a webhook secret
	// hookAllow is the webhook allowlist, which callback URLs are checked
	// against at enqueue.
	hookAllow webhook.Allowlist
	reg       *prometheus.Registry
	routes    []route
	dash      *dashboard.Dashboard
	handler   http.Handler
	// keys authenticates API keys; failures limits failed attempts per
	// client address; hosts are the names the Host header may carry while
	// the server runs open.
	keys     *auth.Keyring
	failures *auth.FailureLimiter
	hosts    []string
	touch    *touchLoop
	// tls is the TLS configuration of Serve (nil: plain HTTP); waits
	// counts the long-polls and streams of each key.
	tls   *tls.Config
	waits *waitCounter
	// bodies is the memory budget of request bodies being read.
	bodies *bodyBudget
	// longest is the read and write deadline of a connection's request:
	// the longest a request may take, long-poll included.
	longest time.Duration
	// sqs serves the Amazon SQS API (ServeSQS).
	sqs *sqs.Handler

	// stopping is set once shutdown begins; /readyz answers 503 from then on.
	stopping  atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New opens the store (the database cfg.Store names, else the embedded
// store in cfg.DataDir), applies a database's pending migrations, starts
// the engine, and returns a Server ready to serve. ctx bounds opening the
// store (at most a minute when it has no deadline), not the server's life:
// Close it to release the store.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, storeOpenTimeout)
		defer cancel()
	}
	st, err := open.Open(ctx, cfg.storeOptions())
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s, err := build(cfg, st)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return s, nil
}

// storeOptions names the store of cfg.
func (c Config) storeOptions() open.Options {
	return open.Options{URL: c.Store, DataDir: c.DataDir, Logger: c.Logger.With("component", "store")}
}

func init() {
	servertest.Register(func(srv any) *engine.Engine { return srv.(*Server).engine })
}

// build assembles metrics, engine and routes on an open store.
func build(cfg Config, st store.Store) (*Server, error) {
	reg := prometheus.NewRegistry()
	if err := registerAll(reg,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	); err != nil {
		return nil, fmt.Errorf("server: registering runtime metrics: %w", err)
	}
	m, err := engine.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("server: registering engine metrics: %w", err)
	}
	space, err := diskGuard(cfg)
	if err != nil {
		return nil, err
	}
	if space != nil {
		if err := reg.Register(newDiskCollector(space)); err != nil {
			return nil, fmt.Errorf("server: registering disk metrics: %w", err)
		}
	}
	e, err := engine.New(engine.Config{
		Store:     st,
		Clock:     cfg.Clock,
		Logger:    cfg.Logger.With("component", "engine"),
		Defaults:  engine.Defaults(cfg.Defaults),
		Metrics:   m,
		DiskSpace: space,
		Budget:    engine.Budget{MaxQueues: cfg.MaxQueues, MaxJobs: cfg.MaxJobs, MaxPayloadBytes: cfg.MaxPayloadStored},
	})
	if err != nil {
		return nil, fmt.Errorf("server: creating the engine: %w", err)
	}
	hm := newHTTPMetrics()
	bodies := newBodyBudget(cfg.MaxBodyMemory)
	if err := registerAll(reg, engine.NewDepthCollector(e), engine.NewTelemetryCollector(e), engine.NewBudgetCollector(e), hm.requests, hm.duration, hm.inFlight, bodies.gauge); err != nil {
		return nil, fmt.Errorf("server: registering queue metrics: %w", err)
	}
	sealer, err := auth.LoadSealer(cfg.SecretKeyFile, cfg.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: st, engine: e, reg: reg, bodies: bodies,
		longest: cfg.RequestTimeout + spool.MaxWait + deadlineMargin, hosts: allowedHosts(cfg)}
	s.keys = auth.NewKeyring(auth.KeyringConfig{Store: st, Sealer: sealer, Now: cfg.Clock.Now, Logger: cfg.Logger.With("component", "auth")})
	s.failures = auth.NewFailureLimiter(cfg.AuthFailures, authFailureWindow, cfg.Clock.Now)
	s.waits = newWaitCounter(cfg.MaxWaitsPerKey)
	if err := s.bootstrapKey(context.Background()); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.tls, err = loadTLS(cfg); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.dash, err = dashboard.New(dashboard.Config{Engine: e, Logger: cfg.Logger.With("component", "dashboard"), Clock: e.Now,
		Principal: func(r *http.Request) *auth.Principal { return principalOf(r.Context()) }, CSRFToken: csrfToken})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.routes = s.routeTable()
	s.handler = s.newRoot(hm)
	s.sqs, err = sqs.New(sqs.Config{
		Engine:      e,
		Logger:      cfg.Logger.With("component", "sqs"),
		Limits:      cfg.Limits,
		Region:      cfg.SQSRegion,
		Auth:        sqs.KeyringAuth(s.keys),
		HostAllowed: s.hostAllowed,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if cfg.WebhookSecret != "" {
		allow, err := webhook.ParseAllowlist(cfg.WebhookAllow)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.hookAllow = allow
		s.hooks, err = webhook.NewDispatcher(webhook.DispatcherConfig{
			Engine: e,
			Secret: cfg.WebhookSecret,
			Sender: webhook.Config{Allowlist: allow, Timeout: cfg.WebhookTimeout},
			Logger: cfg.Logger.With("component", "webhooks"),
		})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	if err := e.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("server: starting the engine: %w", err)
	}
	if s.hooks != nil {
		if err := s.hooks.Start(context.Background()); err != nil {
			e.Stop()
			return nil, fmt.Errorf("server: starting webhook deliveries: %w", err)
		}
	}
	s.touch = startTouchLoop(s.keys, s.log, s.purgeAudit)
	return s, nil
}

// defaultMaxJobs is the default MaxJobs: on PostgreSQL a fixed
// DefaultMaxJobsPostgres; on the embedded store, which holds the jobs not
// yet finished in memory, a quarter of memory (the process's memory, 0 if
// unknown) at embeddedBytesPerJob each, and at least DefaultMinMaxJobs.
func defaultMaxJobs(postgres bool, memory int64) int64 {
	if postgres {
		return DefaultMaxJobsPostgres
	}
	return max(DefaultMinMaxJobs, memory/4/embeddedBytesPerJob)
}

// defaultMaxPayloadStored is the default MaxPayloadStored: half the size
// of the volume of the embedded store's data directory (or of the nearest
// directory above it that exists), else DefaultMaxPayloadStoredPostgres.
func defaultMaxPayloadStored(postgres bool, dataDir string) int64 {
	if postgres {
		return DefaultMaxPayloadStoredPostgres
	}
	for dir := filepath.Clean(dataDir); ; dir = filepath.Dir(dir) {
		if u, err := diskspace.Stat(dir); err == nil && u.Total > 0 {
			return int64(min(u.Total/2, math.MaxInt64))
		}
		if filepath.Dir(dir) == dir {
			return DefaultMaxPayloadStoredPostgres
		}
	}
}

// diskGuard returns the free-space guard of the embedded store's volume,
// nil with PostgreSQL or with the mark turned off.
func diskGuard(cfg Config) (*diskspace.Guard, error) {
	mark, err := diskspace.ParseMark(cfg.MinFreeSpace)
	if err != nil || cfg.Store != "" || mark.Off() {
		return nil, err
	}
	g, err := diskspace.New(diskspace.Config{
		Dir:    cfg.DataDir,
		Mark:   mark,
		Stat:   cfg.DiskStat,
		Logger: cfg.Logger.With("component", "disk"),
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	u, bytes, _ := g.Usage()
	cfg.Logger.Info("free disk space guard", "dir", cfg.DataDir, "mark", mark.String(), "mark_bytes", diskspace.FormatBytes(bytes),
		"free", diskspace.FormatBytes(u.Free), "total", diskspace.FormatBytes(u.Total))
	return g, nil
}

func registerAll(reg *prometheus.Registry, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.handler }

// Drain ends what waits: long-polls (leases, job waits) and event streams
// answer at once, the background loops (maintenance, schedules, webhook
// deliveries) stop, and /readyz answers 503. Requests in flight finish.
// Serve drains at shutdown; a program that serves Handler itself calls it
// before shutting its HTTP server down, so the shutdown does not wait out
// the long-polls. It is idempotent; Close follows.
func (s *Server) Drain() {
	s.stopping.Store(true)
	s.stopHooks()
	s.engine.Stop()
}

// Serve serves HTTP on ln until ctx is done, then shuts down gracefully:
// stops accepting, ends long-polls, finishes in-flight requests within
// ShutdownTimeout. It does not close the store; Close does.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.stopping.Load() {
		_ = ln.Close()
		return errors.New("server: Serve called after shutdown or Close")
	}
	if err := s.checkOpen(ctx, ln); err != nil {
		_ = ln.Close()
		return err
	}
	srv := s.httpServer(s.handler)
	errc := make(chan error, 1)
	go func() {
		errc <- srv.Serve(s.listener(refusalListener{newLimitListener(ln, s.cfg.MaxConnections, s.log)}))
	}()
	s.log.Info("spool server started", "addr", ln.Addr().String(), "store", open.Describe(s.cfg.storeOptions()), "tls", s.tls != nil, "mtls", s.tls != nil && s.tls.ClientCAs != nil)

	var storeFailed <-chan struct{} // nil: never
	if f, ok := s.store.(store.Failer); ok {
		storeFailed = f.Failed()
	}
	var failure error
	select {
	case err := <-errc:
		s.log.Error("spool server failed", "addr", ln.Addr().String(), "error", err)
		return fmt.Errorf("server: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	case <-storeFailed:
		// The store cannot recover in place: stop, so that a supervisor
		// restarts the process, which recovers from what is on disk.
		failure = fmt.Errorf("server: the store stopped serving: %w", s.storeErr())
		s.log.Error("the store stopped serving; stopping the server so that a restart recovers it (nothing acknowledged is lost)",
			"error", s.storeErr(), "disk_full", errors.Is(failure, spool.ErrDiskFull))
	}

	s.log.Info("spool server stopping", "addr", ln.Addr().String(), "shutdown_timeout", s.cfg.ShutdownTimeout)
	start := time.Now()
	// Draining first makes waiting long-polls answer at once, so Shutdown
	// does not wait out their timers.
	s.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("server: graceful shutdown: %w", err), srv.Close())
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.log.Info("spool server stopped", "addr", ln.Addr().String(), "duration", time.Since(start), "error", err)
	if failure != nil {
		return errors.Join(failure, err)
	}
	return err
}

// httpServer is the HTTP server of a listener serving h: the timeouts and
// limits of Config. Read and write deadlines cover a whole request,
// long-poll included (see the comment on the timeout constants); request
// bodies get a shorter one of their own (Config.BodyReadTimeout).
func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.longest,
		WriteTimeout:      s.longest,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// listener wraps ln in the server's TLS, when it has any.
func (s *Server) listener(ln net.Listener) net.Listener {
	if s.tls != nil {
		return tls.NewListener(ln, s.tls)
	}
	return ln
}

// ListenAndServe listens on cfg.Addr and calls Serve, and, when
// cfg.SQSAddr is set, serves the SQS API there too (ServeSQS).
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listening on %s: %w", s.cfg.Addr, err)
	}
	if s.cfg.SQSAddr == "" {
		return s.Serve(ctx, ln)
	}
	sln, err := lc.Listen(ctx, "tcp", s.cfg.SQSAddr)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("server: listening on %s for the SQS API: %w", s.cfg.SQSAddr, err)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	sqsErr := make(chan error, 1)
	go func() {
		err := s.ServeSQS(ctx, sln)
		stop()
		sqsErr <- err
	}()
	err = s.Serve(ctx, ln)
	stop()
	return errors.Join(err, <-sqsErr)
}

// SQSHandler returns the handler of the Amazon SQS API (docs/sqs.md).
func (s *Server) SQSHandler() http.Handler { return s.sqs }

// ServeSQS serves the Amazon SQS API on ln until ctx is done, then shuts
// down gracefully within ShutdownTimeout (long polls end when the engine
// stops). Run it beside Serve, which stops the engine.
func (s *Server) ServeSQS(ctx context.Context, ln net.Listener) error {
	if err := s.checkOpen(ctx, ln); err != nil {
		_ = ln.Close()
		return err
	}
	srv := s.httpServer(s.sqs)
	errc := make(chan error, 1)
	// The same TLS (and client certificates) and connection limit as the
	// HTTP API.
	go func() { errc <- srv.Serve(s.listener(newLimitListener(ln, s.cfg.MaxConnections, s.log))) }()
	s.log.Info("sqs api started", "addr", ln.Addr().String(), "tls", s.tls != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("server: serving the SQS API on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	// Long polls end once the engine stops (Serve or Close stops it).
	s.engine.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("server: graceful shutdown of the SQS API: %w", err), srv.Close())
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.log.Info("sqs api stopped", "addr", ln.Addr().String())
	return err
}

// Close stops the engine and closes the store. It is idempotent. Requests
// that arrive afterwards are answered 503 (the store refuses work once
// closed); call it after Serve has returned.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.Drain()
		s.touch.stop()
		if err := s.store.Close(); err != nil {
			s.closeErr = fmt.Errorf("server: closing the store: %w", err)
		}
	})
	return s.closeErr
}

// stopHooks stops webhook deliveries (before the engine: they use it).
func (s *Server) stopHooks() {
	if s.hooks != nil {
		s.hooks.Stop()
	}
}
