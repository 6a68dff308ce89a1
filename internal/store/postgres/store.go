package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Logger receives the store's messages. Nil discards them.
	Logger *slog.Logger
	// Schema holds the store's tables; "" means the search_path parameter
	// of the connection URL if it names one schema
	// (postgres://host/db?search_path=spool), else "public". It is created
	// by the migrations if missing. Several stores (or test runs) share one
	// database through distinct schemas; nodes that share a queue system
	// use the same schema.
	Schema string
	// MaxConns bounds the connection pool; 0 means pgxpool's default (the
	// larger of 4 and the number of CPUs), which URL parameter
	// pool_max_conns also sets.
	MaxConns int32
	// SkipMigrations makes Open check that the schema is at this build's
	// version instead of migrating it: for deployments where migrations
	// run separately (Migrate, a `spool migrate` command).
	SkipMigrations bool
	// noVersionCheck (with SkipMigrations) skips the version check too:
	// MigrateSchema migrates right after.
	noVersionCheck bool

	// admission tunes the max_depth check; zero fields take the defaults.
	// Set by tests only.
	admission admission
	// analyzeEvery is how often the Store checks that spool_jobs has
	// planner statistics (see analyze.go); 0 means the default. Set by
	// tests only.
	analyzeEvery time.Duration
}

// admission tunes Insert's max_depth check (see spool_check_depth in the
// migrations): up to tickets inserts of at most maxFastGain jobs each are
// admitted to one queue concurrently while it has more than
// tickets*maxFastGain free places; closer to its limit, and for larger
// batches, inserts into a queue are admitted one at a time.
type admission struct {
	tickets     int32
	maxFastGain int64
}

// Defaults of admission: a queue more than 4,096 jobs below its max_depth
// admits 32 concurrent inserts of up to 128 jobs.
const (
	defaultTickets     = 32
	defaultMaxFastGain = 128
)

// DefaultSchema is the schema used when Options.Schema is empty.
const DefaultSchema = "public"

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.admission.tickets <= 0 {
		o.admission.tickets = defaultTickets
	}
	if o.admission.maxFastGain <= 0 {
		o.admission.maxFastGain = defaultMaxFastGain
	}
	if o.analyzeEvery <= 0 {
		o.analyzeEvery = defaultAnalyzeEvery
	}
	return o
}

func (o Options) validate() error {
	if o.MaxConns < 0 {
		return spool.Invalidf("postgres store: MaxConns must not be negative, got %d", o.MaxConns)
	}
	if strings.ContainsRune(o.Schema, 0) || len(o.Schema) > 63 {
		return spool.Invalidf("postgres store: Schema %q is not a valid PostgreSQL identifier", o.Schema)
	}
	return nil
}

// Store is the PostgreSQL store.Store. It is safe for concurrent use, and
// several Stores (in several processes) may share one schema. It is also a
// store.Notifier: Listen reports the writes of the other Stores on the
// schema.
type Store struct {
	pool      *pgxpool.Pool
	log       *slog.Logger
	schema    string
	admission admission

	// node names this Store in its notifications; sender sends them;
	// listenCfg configures Listen's own connection.
	node      string
	sender    *sender
	listenCfg *pgx.ConnConfig
	// due is what NextDue answers.
	due dueCache
	// cappedQueues are the queues leased with a concurrency cap (flow.go).
	cappedQueues sync.Map

	// analyzed is closed when analyzeLoop ends.
	analyzed chan struct{}

	// life ends at Close: it stops the sender, analyzeLoop and any Listen.
	life      context.Context
	endLife   context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a keyword/value
// connection string, as pgx accepts), applies pending migrations (unless
// opts.SkipMigrations) and returns the store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, spool.Invalidf("postgres store: cannot parse the connection URL %s: %v", redact(url), redactErr(err, url))
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Without it a host that does not answer holds every request
		// until its own deadline; with it, requests fail fast (503) while
		// the database is out of reach. URL parameter connect_timeout
		// overrides it.
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	rp := cfg.ConnConfig.RuntimeParams
	if opts.Schema == "" {
		if opts.Schema, err = schemaFromURL(rp["search_path"]); err != nil {
			return nil, err
		}
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	rp["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	// The statements rely on READ COMMITTED: a fresh snapshot per statement
	// (the admission check counts after taking its locks) and re-checks of
	// concurrently updated rows. A server default of REPEATABLE READ or
	// SERIALIZABLE would break the first and turn the second into errors.
	rp["default_transaction_isolation"] = "read committed"
	if rp["application_name"] == "" {
		rp["application_name"] = "spool"
	}
	s := &Store{log: opts.Logger, schema: opts.Schema, admission: opts.admission, node: newNodeID(),
		listenCfg: cfg.ConnConfig.Copy()}
	cfg.AfterConnect = s.afterConnect

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, interpretError("connecting", err)
	}
	s.pool = pool
	if err := s.checkServer(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	switch {
	case opts.noVersionCheck:
	case opts.SkipMigrations:
		err = s.checkVersion(ctx)
	default:
		err = s.Migrate(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.life, s.endLife = context.WithCancel(context.Background())
	s.sender = newSender(s)
	go s.sender.run(s.life)
	s.analyzed = make(chan struct{})
	go s.analyzeLoop(s.life, opts.analyzeEvery)
	s.log.Info("postgres store opened", "host", cfg.ConnConfig.Host, "database", cfg.ConnConfig.Database,
		"schema", s.schema, "max_conns", cfg.MaxConns)
	return s, nil
}

// afterConnect enforces the durability contract on every new connection: a
// write returns only once its commit is flushed, so synchronous_commit=off
// (set on the server, database or role) is turned back on for the session.
// Stronger settings (remote_write, remote_apply) are kept.
func (s *Store) afterConnect(ctx context.Context, conn *pgx.Conn) error {
	var prev string
	err := conn.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&prev)
	if err != nil {
		return err
	}
	if prev == "off" {
		if _, err := conn.Exec(ctx, `SET synchronous_commit = on`); err != nil {
			return err
		}
	}
	return nil
}

// defaultConnectTimeout bounds a connection attempt when the URL does not.
const defaultConnectTimeout = 5 * time.Second

// schemaFromURL returns the schema named by the URL's search_path
// parameter: "" when absent, an error when it names several.
func schemaFromURL(searchPath string) (string, error) {
	sp := strings.TrimSpace(searchPath)
	if sp == "" {
		return "", nil
	}
	if strings.Contains(sp, ",") {
		return "", spool.Invalidf("postgres store: the URL's search_path %q names several schemas; name the one schema of the store", searchPath)
	}
	if len(sp) >= 2 && sp[0] == '"' && sp[len(sp)-1] == '"' {
		return strings.ReplaceAll(sp[1:len(sp)-1], `""`, `"`), nil
	}
	// PostgreSQL folds an unquoted name to lower case.
	return strings.ToLower(sp), nil
}

// minServerVersion is the oldest PostgreSQL the SQL runs on (12: MATERIALIZED
// common table expressions).
const minServerVersion = 120000

// checkServer refuses a server too old for the store's SQL, and warns about
// settings that void the durability contract and that a session cannot
// change.
func (s *Store) checkServer(ctx context.Context) error {
	var (
		version int
		fsync   string
	)
	err := s.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('fsync')`).
		Scan(&version, &fsync)
	if err != nil {
		return interpretError("checking server settings", err)
	}
	if version < minServerVersion {
		return fmt.Errorf("postgres store: the server runs PostgreSQL %d.%d; spool needs 12 or later", version/10000, version%10000)
	}
	if fsync != "on" {
		s.log.Warn("PostgreSQL runs with fsync off: a crash of its host can lose acknowledged jobs", "fsync", fsync)
	}
	return nil
}

// Close closes the pool, waiting for calls in progress. It is idempotent;
// afterwards every method returns an error wrapping spool.ErrUnavailable.
// Wake-ups not yet sent to other nodes get one last, short attempt, and a
// Listen in progress returns.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.endLife()
		<-s.sender.done
		<-s.analyzed
		s.pool.Close()
		s.log.Info("postgres store closed", "schema", s.schema)
	})
	return nil
}

var errClosed = fmt.Errorf("postgres store is closed: %w", spool.ErrUnavailable)

// begin checks that the store is open and that ctx is live.
func (s *Store) begin(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// SQLSTATEs raised by the store's own SQL (see the migrations).
const (
	codeQueueFull        = "SP001"
	codeKeyVanished      = "SP002"
	codeAdmitExclusively = "SP003"
)

// interpretError translates an error of pgx or PostgreSQL into the spool
// sentinels, so that no pgx type crosses the store seam: the cause is kept
// as text only. Context errors are returned wrapped as they are.
func interpretError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("postgres store: %s: %w", op, context.Canceled)
		}
		return fmt.Errorf("postgres store: %s: %w", op, context.DeadlineExceeded)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres store: %s: %w", op, spool.ErrNotFound)
	}
	var de *dataError
	if errors.As(err, &de) {
		return fmt.Errorf("postgres store: %s: %v", op, de)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		// Not an answer of the server: the connection failed, timed out or
		// the pool is closed.
		return fmt.Errorf("postgres store: %s: %w: %v", op, spool.ErrUnavailable, err)
	}
	msg := pe.Message
	if pe.Detail != "" {
		msg += " (" + pe.Detail + ")"
	}
	var sentinel error
	switch class := pe.Code[:2]; {
	case pe.Code == pgerrUniqueViolation:
		sentinel = spool.ErrConflict
	case class == "22" || class == "23":
		// Data exceptions (a NUL byte or invalid UTF-8 in a string, a
		// value out of range) and other integrity violations: the input.
		sentinel = spool.ErrInvalid
	case class == "08", // connection exception
		class == "40",      // serialization failure, deadlock detected
		class == "53",      // insufficient resources
		class == "55",      // object not in prerequisite state (lock not available)
		class == "57",      // operator intervention: shutdown, query canceled (timeouts)
		class == "58",      // system error (I/O)
		pe.Code == "25006": // read-only transaction: a standby, after a failover
		sentinel = spool.ErrUnavailable
	default:
		return fmt.Errorf("postgres store: %s: %s (SQLSTATE %s)", op, msg, pe.Code)
	}
	return fmt.Errorf("postgres store: %s: %w: %s (SQLSTATE %s)", op, sentinel, msg, pe.Code)
}

const pgerrUniqueViolation = "23505"

// sqlState returns the SQLSTATE of a server error, "" for any other error.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports whether a failed transaction may simply run again: it
// was rolled back and failed for a reason that does not repeat.
func retryable(err error) bool {
	switch sqlState(err) {
	case "40001", "40P01", codeKeyVanished, codeAdmitExclusively:
		return true
	}
	return false
}

// maxTries bounds retries of retryable failures.
const maxTries = 4

// retry runs fn until it succeeds, fails for good, or maxTries is reached.
func retry(ctx context.Context, fn func() error) error {
	var err error
	for try := 1; ; try++ {
		err = fn()
		if err == nil || !retryable(err) || try >= maxTries || ctx.Err() != nil {
			return err
		}
		// A short, growing pause lets the competing transaction finish.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(try) * time.Millisecond):
		}
	}
}

// RedactURL returns a connection URL fit for logs: its password hidden.
func RedactURL(url string) string { return redact(url) }

// redact hides the password of a connection URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if strings.Contains(raw, "password") {
			return "(connection string with a password)"
		}
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func redactErr(err error, raw string) string {
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}
