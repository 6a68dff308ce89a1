package bench

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// SpoolJobType is the type of every job the Spool target enqueues.
const SpoolJobType = "bench"

// SpoolDurability is what an acknowledged enqueue survives on Spool's
// embedded store.
const SpoolDurability = "fsync before ack (group commit)"

// SpoolConfig configures a SpoolTarget.
type SpoolConfig struct {
	// URL is the server's base URL. Required.
	URL string
	// Name is the target's name in reports (default "spool").
	Name string
	// Durability describes what an acknowledged enqueue survives (default
	// SpoolDurability).
	Durability string
	// PID is the server's process id when known (the bench started the
	// server), so backpressure can sample its RSS; 0 if unknown.
	PID int
}

// SpoolTarget is Spool as a Target, through the Go SDK. Producers use a
// Client that sends every enqueue once (client.NoRetry): a full queue is
// answered, not waited out, so each Enqueue is exactly one request, as with
// the peers' clients (without retries the SDK adds no idempotency key).
// Work runs a client.Worker with the SDK's default settings and
// Concurrency workers.
type SpoolTarget struct {
	producer   *client.Client
	worker     *client.Client
	name       string
	durability string
	pid        int
}

var (
	_ Target        = (*SpoolTarget)(nil)
	_ Bounded       = (*SpoolTarget)(nil)
	_ ServerProcess = (*SpoolTarget)(nil)
)

// NewSpoolTarget returns a Target for the Spool server at cfg.URL.
func NewSpoolTarget(cfg SpoolConfig) (*SpoolTarget, error) {
	if cfg.Name == "" {
		cfg.Name = "spool"
	}
	if cfg.Durability == "" {
		cfg.Durability = SpoolDurability
	}
	ua := client.WithUserAgent("spool-bench")
	p, err := client.New(cfg.URL, ua, client.WithRetryPolicy(client.NoRetry))
	if err != nil {
		return nil, err
	}
	w, err := client.New(cfg.URL, ua)
	if err != nil {
		p.Close()
		return nil, err
	}
	return &SpoolTarget{producer: p, worker: w, name: cfg.Name, durability: cfg.Durability, pid: cfg.PID}, nil
}

// Name implements Target.
func (s *SpoolTarget) Name() string { return s.name }

// Durability implements Target.
func (s *SpoolTarget) Durability() string { return s.durability }

// Enqueue implements Target.
func (s *SpoolTarget) Enqueue(ctx context.Context, queue string, payload []byte) error {
	_, _, err := s.producer.Enqueue(ctx, queue, spool.EnqueueRequest{Type: SpoolJobType, Payload: json.RawMessage(payload)})
	return err
}

// EnqueueDelayed implements Delayer.
func (s *SpoolTarget) EnqueueDelayed(ctx context.Context, queue string, payload []byte, delay time.Duration) error {
	d := spool.Duration(delay)
	_, _, err := s.producer.Enqueue(ctx, queue, spool.EnqueueRequest{Type: SpoolJobType, Payload: json.RawMessage(payload), Delay: &d})
	return err
}

// EnqueueBatch implements Target: one POST .../jobs:batch answered with the
// jobs' ids only (Prefer: return=minimal), as River's InsertManyFast
// answers with a count.
func (s *SpoolTarget) EnqueueBatch(ctx context.Context, queue string, payloads [][]byte) error {
	reqs := make([]spool.EnqueueRequest, len(payloads))
	for i, p := range payloads {
		reqs[i] = spool.EnqueueRequest{Type: SpoolJobType, Payload: json.RawMessage(p)}
	}
	_, err := s.producer.EnqueueBatchIDs(ctx, queue, reqs)
	return err
}

// Work implements Target with a client.Worker.
func (s *SpoolTarget) Work(ctx context.Context, queue string, workers int, h Handler) error {
	w, err := client.NewWorker(s.worker, client.WorkerOptions{Queues: []string{queue}, Concurrency: workers})
	if err != nil {
		return err
	}
	w.HandleDefault(func(ctx context.Context, j *client.Job) (any, error) {
		return nil, h(ctx, j.Payload)
	})
	return w.Run(ctx)
}

// Pending implements Target: the queue's depth (jobs not yet finished).
func (s *SpoolTarget) Pending(ctx context.Context, queue string) (int64, error) {
	q, err := s.producer.Queue(ctx, queue)
	if errors.Is(err, spool.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return q.Depth, nil
}

// SetMaxDepth implements Bounded.
func (s *SpoolTarget) SetMaxDepth(ctx context.Context, queue string, depth int64) error {
	_, err := s.producer.UpdateQueue(ctx, queue, spool.QueueConfig{MaxDepth: &depth})
	return err
}

// IsFull implements Bounded: the server's 503 queue_full.
func (s *SpoolTarget) IsFull(err error) bool { return errors.Is(err, spool.ErrQueueFull) }

// ServerPID implements ServerProcess; 0 when the server was not started by
// the bench.
func (s *SpoolTarget) ServerPID() int { return s.pid }

// Close implements Target.
func (s *SpoolTarget) Close() error {
	s.producer.Close()
	s.worker.Close()
	return nil
}
