// Package bench runs the scenarios of `spool bench` against a queue system
// under test. Spool is one Target; the peers module (bench/peers) supplies
// Targets for other systems, so every system runs the very same scenario
// code, payloads and handler.
package bench

import (
	"context"
	"time"
)

// Target is one queue system under test, already running and reachable.
type Target interface {
	// Name identifies the system and its setup, e.g. "spool-embedded",
	// "asynq-redis-everysec", "river-postgres".
	Name() string
	// Durability states what an acknowledged enqueue survives, in words
	// ("fsync before ack", "appendfsync everysec: up to 1 s lost", ...).
	Durability() string
	// Enqueue stores one job with payload on queue and returns once the
	// system acknowledged it.
	Enqueue(ctx context.Context, queue string, payload []byte) error
	// EnqueueBatch stores the jobs in as few requests as the system allows
	// (ideally one) and returns once all are acknowledged.
	EnqueueBatch(ctx context.Context, queue string, payloads [][]byte) error
	// Work runs workers concurrent handlers on queue, calling h for every
	// job, until ctx is done; it returns after the workers stopped. A nil
	// error from h completes the job.
	Work(ctx context.Context, queue string, workers int, h Handler) error
	// Pending returns how many jobs of queue are not finished yet
	// (waiting, scheduled, ready or active).
	Pending(ctx context.Context, queue string) (int64, error)
	// Close releases the target's clients (not the system itself).
	Close() error
}

// Handler processes one job; the payload is exactly what was enqueued.
type Handler func(ctx context.Context, payload []byte) error

// Bounded is implemented by targets whose queues can refuse work when full
// (the back-pressure scenario runs only against them).
type Bounded interface {
	// SetMaxDepth bounds queue to depth unfinished jobs.
	SetMaxDepth(ctx context.Context, queue string, depth int64) error
	// IsFull reports whether err is the system's "queue full, retry later"
	// answer (for Spool: 503 queue_full).
	IsFull(err error) bool
}

// ServerProcess is implemented by targets that know the PID of the server
// process, so scenarios can read its resident memory.
type ServerProcess interface {
	ServerPID() int
}

// Options selects the scenarios and their sizes. Zero values take the
// defaults of DefaultOptions.
type Options struct {
	Scenarios   []string      // names of Scenarios to run; empty: all
	Runs        int           // runs per scenario; the report shows median, min, max
	Producers   int           // enqueue_single: concurrent producers (C)
	Count       int           // jobs per run for enqueue and process scenarios
	BatchSize   int           // enqueue_batch: jobs per batch (B)
	Workers     int           // process: worker goroutines (W)
	Rate        int           // latency: offered jobs per second (R)
	Duration    time.Duration // latency and backpressure: length of a run (D)
	MaxDepth    int64         // backpressure: the queue's max_depth
	PayloadSize int           // bytes per payload (default 100)
	// Progress, when set, receives progress updates for a terminal bar.
	Progress func(scenario string, run, done, total int)
}

// Scenario names, in the order they run.
const (
	ScenarioEnqueueSingle = "enqueue_single"
	ScenarioEnqueueBatch  = "enqueue_batch"
	ScenarioProcess       = "process"
	ScenarioLatency       = "latency"
	ScenarioBackpressure  = "backpressure"
)

// Report is the outcome of Run for one target; it is also the --json
// output, so reports of several systems (and of the peers module) can be
// compared by Compare.
type Report struct {
	System     string            `json:"system"`
	Durability string            `json:"durability"`
	Machine    string            `json:"machine"` // CPU count, OS, Go version
	Started    time.Time         `json:"started"`
	Scenarios  []ScenarioResult  `json:"scenarios"`
	Params     map[string]string `json:"params"` // the Options used, as text
}

// ScenarioResult holds one scenario's metrics over all runs.
type ScenarioResult struct {
	Name    string            `json:"name"`
	Skipped string            `json:"skipped,omitempty"` // why it did not run (e.g. target not Bounded)
	Metrics map[string]Metric `json:"metrics"`
}

// Metric is one figure over Runs runs: median, min, max and every run.
type Metric struct {
	Unit   string    `json:"unit"`   // "jobs/s", "ms", "MiB", "count"
	Better string    `json:"better"` // "higher" or "lower"
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
}
