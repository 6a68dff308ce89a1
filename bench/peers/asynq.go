package peers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/spoolq/spool/internal/bench"
)

// asynqTaskType is the task type every benchmark job has.
const asynqTaskType = "spool:bench"

// AsynqConfig configures an asynq target.
type AsynqConfig struct {
	// Addr is the Redis server, host:port. Required.
	Addr string
	// PoolSize is the Redis connection pool size shared by the client,
	// the inspector and the servers. Default 64.
	PoolSize int
	// BatchInFlight bounds the concurrent enqueues of one EnqueueBatch.
	// Default 32.
	BatchInFlight int
	// TaskCheckInterval, when set, is passed to asynq.Config: how long a
	// server's processor waits before looking again at an empty queue
	// (asynq's default is 1 s). The target's name then says so.
	TaskCheckInterval time.Duration
	// ServerPID, when set, is the PID of the Redis server (for the
	// memory figures of the scenarios).
	ServerPID int
}

func (c *AsynqConfig) withDefaults() AsynqConfig {
	out := *c
	if out.PoolSize <= 0 {
		out.PoolSize = 64
	}
	if out.BatchInFlight <= 0 {
		out.BatchInFlight = 32
	}
	return out
}

// Asynq is a bench.Target for asynq (github.com/hibiken/asynq) on Redis.
type Asynq struct {
	cfg        AsynqConfig
	rdb        *redis.Client
	client     *asynq.Client
	inspector  *asynq.Inspector
	name       string
	durability string
}

var (
	_ bench.Target        = (*Asynq)(nil)
	_ bench.ServerProcess = (*Asynq)(nil)
)

// NewAsynq connects to Redis and reads its persistence settings, which
// name the target ("asynq-redis-everysec", "asynq-redis-noaof", ...).
func NewAsynq(ctx context.Context, cfg AsynqConfig) (*Asynq, error) {
	if cfg.Addr == "" {
		return nil, errors.New("asynq: AsynqConfig.Addr is required")
	}
	cfg = cfg.withDefaults()
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Addr, PoolSize: cfg.PoolSize})
	setting, durability, err := redisDurability(ctx, rdb)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	name := "asynq-redis-" + setting
	if cfg.TaskCheckInterval > 0 {
		name += "-check" + cfg.TaskCheckInterval.String()
	}
	return &Asynq{
		cfg:        cfg,
		rdb:        rdb,
		client:     asynq.NewClientFromRedisClient(rdb),
		inspector:  asynq.NewInspectorFromRedisClient(rdb),
		name:       name,
		durability: durability,
	}, nil
}

// redisDurability reads appendonly and appendfsync and says, in words,
// what an acknowledged write survives.
func redisDurability(ctx context.Context, rdb *redis.Client) (setting, words string, err error) {
	get := func(key string) (string, error) {
		m, err := rdb.ConfigGet(ctx, key).Result()
		if err != nil {
			return "", fmt.Errorf("asynq: reading Redis %s: %w", key, err)
		}
		return m[key], nil
	}
	aof, err := get("appendonly")
	if err != nil {
		return "", "", err
	}
	fsync, err := get("appendfsync")
	if err != nil {
		return "", "", err
	}
	if aof != "yes" {
		return "noaof", "Redis appendonly no (RDB snapshots at most): a crash loses every write since the last snapshot", nil
	}
	switch fsync {
	case "always":
		return "always", "Redis appendonly yes, appendfsync always: fsync before reply", nil
	case "everysec":
		return "everysec", "Redis appendonly yes, appendfsync everysec: acknowledged writes of up to ~1 s may be lost", nil
	default:
		return "aof-" + fsync, "Redis appendonly yes, appendfsync " + fsync + ": the OS decides when to write; a machine crash may lose acknowledged writes", nil
	}
}

// Name implements bench.Target.
func (a *Asynq) Name() string { return a.name }

// Durability implements bench.Target.
func (a *Asynq) Durability() string { return a.durability }

// ServerPID implements bench.ServerProcess (0 when unknown).
func (a *Asynq) ServerPID() int { return a.cfg.ServerPID }

// Enqueue implements bench.Target: one Client.EnqueueContext.
func (a *Asynq) Enqueue(ctx context.Context, queue string, payload []byte) error {
	_, err := a.client.EnqueueContext(ctx, asynq.NewTask(asynqTaskType, payload), asynq.Queue(queue))
	if err != nil {
		return fmt.Errorf("asynq: enqueue on %q: %w", queue, err)
	}
	return nil
}

// EnqueueBatch implements bench.Target. asynq has no batch insert: the
// enqueues run concurrently, at most BatchInFlight at a time.
func (a *Asynq) EnqueueBatch(ctx context.Context, queue string, payloads [][]byte) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(a.cfg.BatchInFlight)
	for _, p := range payloads {
		g.Go(func() error { return a.Enqueue(ctx, queue, p) })
	}
	return g.Wait()
}

// Work implements bench.Target: an asynq.Server with Concurrency workers
// on queue, until ctx is done.
func (a *Asynq) Work(ctx context.Context, queue string, workers int, h bench.Handler) error {
	srv := asynq.NewServerFromRedisClient(a.rdb, asynq.Config{
		Concurrency:       workers,
		Queues:            map[string]int{queue: 1},
		TaskCheckInterval: a.cfg.TaskCheckInterval,
		LogLevel:          asynq.WarnLevel,
		ShutdownTimeout:   30 * time.Second,
	})
	handler := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		return h(ctx, t.Payload())
	})
	if err := srv.Start(handler); err != nil {
		return fmt.Errorf("asynq: starting server on %q: %w", queue, err)
	}
	<-ctx.Done()
	// Shutdown waits for the active handlers (up to ShutdownTimeout).
	srv.Shutdown()
	return nil
}

// Pending implements bench.Target: pending, active, scheduled and retry
// tasks of queue (0 for a queue asynq has not seen).
func (a *Asynq) Pending(ctx context.Context, queue string) (int64, error) {
	queues, err := a.inspector.Queues()
	if err != nil {
		return 0, fmt.Errorf("asynq: listing queues: %w", err)
	}
	if !slices.Contains(queues, queue) {
		return 0, nil
	}
	info, err := a.inspector.GetQueueInfo(queue)
	if err != nil {
		return 0, fmt.Errorf("asynq: queue info of %q: %w", queue, err)
	}
	return int64(info.Pending + info.Active + info.Scheduled + info.Retry), nil
}

// Close implements bench.Target. The asynq client and inspector share
// the Redis client, which asynq leaves to its owner to close.
func (a *Asynq) Close() error {
	return a.rdb.Close()
}
