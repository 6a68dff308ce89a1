package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// EnqueueResult is the outcome for one enqueued job.
type EnqueueResult struct {
	Job *spool.Job
	// Existing is true when an idempotency key matched an earlier job, which
	// is returned instead of a new one.
	Existing bool
}

// Enqueue stores jobs in a queue, all or none. The requests must have passed
// Validate. A full queue returns a *spool.QueueFullError with RetryAfter set.
func (e *Engine) Enqueue(ctx context.Context, queue string, reqs []spool.EnqueueRequest) ([]EnqueueResult, error) {
	if err := spool.ValidateQueueName(queue); err != nil {
		return nil, err
	}
	if len(reqs) == 0 {
		return nil, spool.Invalidf("no jobs to enqueue")
	}
	qc, err := e.queueConfig(ctx, queue)
	if err != nil {
		return nil, err
	}
	now := e.clock.Now()
	recs := make([]*store.Record, len(reqs))
	for i := range reqs {
		recs[i] = e.newRecord(queue, &reqs[i], qc, now)
	}
	out, err := e.insert(ctx, recs, map[string]int64{queue: *qc.MaxDepth}, now)
	if err != nil {
		var qf *spool.QueueFullError
		if errors.As(err, &qf) {
			return nil, qf
		}
		return nil, fmt.Errorf("enqueueing into %q: %w", queue, err)
	}
	return out, nil
}

func (e *Engine) newRecord(queue string, r *spool.EnqueueRequest, qc spool.QueueConfig, now time.Time) *store.Record {
	runAt := now
	switch {
	case r.Delay != nil:
		runAt = now.Add(r.Delay.D())
	case r.RunAt != nil:
		runAt = r.RunAt.UTC()
	}
	j := spool.Job{
		ID:             e.cfg.NewID(),
		Queue:          queue,
		Type:           r.Type,
		Payload:        r.Payload,
		Priority:       r.Priority,
		RunAt:          runAt,
		MaxAttempts:    r.MaxAttempts,
		IdempotencyKey: r.IdempotencyKey,
		OrderingKey:    r.OrderingKey,
		DependsOn:      r.DependsOn,
		Tags:           r.Tags,
		CreatedAt:      now,
	}
	if j.MaxAttempts == 0 {
		j.MaxAttempts = *qc.MaxAttempts
	}
	if r.Timeout != nil {
		j.Timeout = *r.Timeout
	}
	if r.Backoff != nil {
		b := *r.Backoff
		j.Backoff = &b
	}
	if runAt.After(now) {
		j.State = spool.StateScheduled
	} else {
		j.State = spool.StateReady
		j.ReadyAt = ptr(now)
	}
	return &store.Record{Job: j}
}
