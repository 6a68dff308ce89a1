package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/spoolq/spool/internal/bench"
)

// riverKind is the job kind every benchmark job has.
const riverKind = "spool_bench"

// RiverConfig configures a River target.
type RiverConfig struct {
	// URL is the PostgreSQL connection URL. Required. pool_max_conns in
	// the URL wins over MaxConns.
	URL string
	// MaxConns is the connection pool size. Default 64 (pgxpool's own
	// default is max(4, CPUs), too few for many producers).
	MaxConns int32
	// FetchCooldown and FetchPollInterval, when set, are passed to
	// river.Config (River's defaults: 100 ms and 1 s). The target's name
	// then says so.
	FetchCooldown     time.Duration
	FetchPollInterval time.Duration
}

// River is a bench.Target for River (github.com/riverqueue/river) on
// PostgreSQL through pgx v5.
type River struct {
	cfg        RiverConfig
	pool       *pgxpool.Pool
	client     *river.Client[pgx.Tx] // insert-only
	name       string
	durability string
}

var _ bench.Target = (*River)(nil)

// riverArgs is a job's args: the benchmark payload as it is. River
// encodes args with encoding/json and stores them as jsonb, so the payload
// must be JSON (the harness's payloads are JSON strings, which jsonb keeps
// byte for byte).
type riverArgs []byte

func (riverArgs) Kind() string { return riverKind }

func (a riverArgs) MarshalJSON() ([]byte, error) {
	if !json.Valid(a) {
		return nil, errors.New("river stores job args as jsonb: the payload must be JSON")
	}
	return a, nil
}

func (a *riverArgs) UnmarshalJSON(b []byte) error {
	*a = append((*a)[:0], b...)
	return nil
}

// NewRiver connects to PostgreSQL, runs River's migrations up and reads
// the durability settings (synchronous_commit, fsync).
func NewRiver(ctx context.Context, cfg RiverConfig) (*River, error) {
	if cfg.URL == "" {
		return nil, errors.New("river: RiverConfig.URL is required")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 64
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("river: parsing the PostgreSQL URL: %w", err)
	}
	if !strings.Contains(cfg.URL, "pool_max_conns") {
		pcfg.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("river: connecting to PostgreSQL: %w", err)
	}
	r := &River{cfg: cfg, pool: pool}
	if err := r.init(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return r, nil
}

func (r *River) init(ctx context.Context) error {
	driver := riverpgxv5.New(r.pool)
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: quietLogger()})
	if err != nil {
		return fmt.Errorf("river: migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river: migrating: %w", err)
	}
	r.client, err = river.NewClient(driver, &river.Config{Logger: quietLogger()})
	if err != nil {
		return fmt.Errorf("river: insert client: %w", err)
	}
	var syncCommit, fsync string
	if err := r.pool.QueryRow(ctx, "SELECT current_setting('synchronous_commit'), current_setting('fsync')").
		Scan(&syncCommit, &fsync); err != nil {
		return fmt.Errorf("river: reading durability settings: %w", err)
	}
	r.durability = fmt.Sprintf("PostgreSQL synchronous_commit=%s, fsync=%s", syncCommit, fsync)
	if syncCommit != "off" && fsync == "on" {
		r.durability += ": WAL flushed to disk before the insert returns"
	} else {
		r.durability += ": an acknowledged insert may be lost in a crash"
	}
	r.name = "river-postgres"
	if syncCommit == "off" {
		r.name += "-async"
	}
	if r.cfg.FetchCooldown > 0 {
		r.name += "-cooldown" + r.cfg.FetchCooldown.String()
	}
	if r.cfg.FetchPollInterval > 0 {
		r.name += "-poll" + r.cfg.FetchPollInterval.String()
	}
	return nil
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// riverQueue maps a Spool queue name to a River one (River allows no '.').
func riverQueue(queue string) string {
	return strings.ReplaceAll(queue, ".", "_")
}

// Name implements bench.Target.
func (r *River) Name() string { return r.name }

// Durability implements bench.Target.
func (r *River) Durability() string { return r.durability }

// Enqueue implements bench.Target: one Client.Insert.
func (r *River) Enqueue(ctx context.Context, queue string, payload []byte) error {
	_, err := r.client.Insert(ctx, riverArgs(payload), &river.InsertOpts{Queue: riverQueue(queue)})
	if err != nil {
		return fmt.Errorf("river: insert on %q: %w", queue, err)
	}
	return nil
}

// EnqueueBatch implements bench.Target: one InsertManyFast (COPY FROM in
// one transaction).
func (r *River) EnqueueBatch(ctx context.Context, queue string, payloads [][]byte) error {
	opts := &river.InsertOpts{Queue: riverQueue(queue)}
	params := make([]river.InsertManyParams, len(payloads))
	for i, p := range payloads {
		params[i] = river.InsertManyParams{Args: riverArgs(p), InsertOpts: opts}
	}
	n, err := r.client.InsertManyFast(ctx, params)
	if err != nil {
		return fmt.Errorf("river: insert many on %q: %w", queue, err)
	}
	if n != len(payloads) {
		return fmt.Errorf("river: insert many on %q: %d of %d jobs inserted", queue, n, len(payloads))
	}
	return nil
}

// Work implements bench.Target: a River client with MaxWorkers workers on
// queue, until ctx is done.
func (r *River) Work(ctx context.Context, queue string, workers int, h bench.Handler) error {
	ws := river.NewWorkers()
	river.AddWorker(ws, river.WorkFunc(func(ctx context.Context, job *river.Job[riverArgs]) error {
		return h(ctx, job.Args)
	}))
	client, err := river.NewClient(riverpgxv5.New(r.pool), &river.Config{
		Logger:            quietLogger(),
		Workers:           ws,
		Queues:            map[string]river.QueueConfig{riverQueue(queue): {MaxWorkers: workers}},
		FetchCooldown:     r.cfg.FetchCooldown,
		FetchPollInterval: r.cfg.FetchPollInterval,
	})
	if err != nil {
		return fmt.Errorf("river: worker client for %q: %w", queue, err)
	}
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("river: starting workers on %q: %w", queue, err)
	}
	<-ctx.Done()
	// Stop waits for the running jobs and for their completions to be
	// written.
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		return fmt.Errorf("river: stopping workers on %q: %w", queue, err)
	}
	return nil
}

// Pending implements bench.Target: the queue's jobs that are not
// completed, cancelled or discarded.
func (r *River) Pending(ctx context.Context, queue string) (int64, error) {
	var n int64
	err := r.pool.QueryRow(ctx,
		`SELECT count(*) FROM river_job
		 WHERE queue = $1 AND state IN ('available', 'pending', 'retryable', 'running', 'scheduled')`,
		riverQueue(queue)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("river: counting jobs of %q: %w", queue, err)
	}
	return n, nil
}

// Close implements bench.Target.
func (r *River) Close() error {
	r.pool.Close()
	return nil
}
