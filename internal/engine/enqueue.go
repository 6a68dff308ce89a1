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
// Validate. A full queue returns a *spool.QueueFullError with RetryAfter set,
// a disk below its free-space mark a *spool.DiskFullError.
func (e *Engine) Enqueue(ctx context.Context, queue string, reqs []spool.EnqueueRequest) ([]EnqueueResult, error) {
	if err := spool.ValidateQueueName(queue); err != nil {
		return nil, err
	}
	if len(reqs) == 0 {
		return nil, spool.Invalidf("no jobs to enqueue")
	}
	if err := e.admitDisk(); err != nil {
		return nil, err
	}
	qc, err := e.queueConfig(ctx, queue)
	if err != nil {
		return nil, err
	}
	fresh := e.newQueues(queue)
	bytes := payloadBytes(reqs)
	if err := e.admitBudget(ctx, len(reqs), bytes, fresh); err != nil {
		return nil, err
	}
	now := e.clock.Now()
	// One allocation for the batch's records and one for their ready time:
	// they live as long as this call and its answer (stores copy what they
	// keep), and nothing writes through a job's ReadyAt.
	recs := make([]*store.Record, len(reqs))
	slab := make([]store.Record, len(reqs))
	readyAt := ptr(now)
	for i := range reqs {
		recs[i] = &slab[i]
		e.fillRecord(recs[i], queue, &reqs[i], qc, now, readyAt)
	}
	recheck, err := e.linkDependencies(ctx, reqs, recs, now)
	if err != nil {
		return nil, err
	}
	out, err := e.insert(ctx, recs, map[string]int64{queue: *qc.MaxDepth}, now)
	if err != nil {
		var qf *spool.QueueFullError
		if errors.As(err, &qf) {
			return nil, qf
		}
		return nil, fmt.Errorf("enqueueing into %q: %w", queue, err)
	}
	e.admitted(len(out), bytes, fresh)
	if fresh > 0 {
		e.queuesExist(queue)
	}
	// A parent may have finished between linkDependencies and the insert,
	// too early to see the new child: look again.
	e.deps.add(recheck...)
	if err := e.relinkRepeats(ctx, recs, out); err != nil {
		return nil, err
	}
	return out, nil
}

// insert stores the records of an enqueue or a publish in one atomic
// insert and does what follows: rates, metrics, wake-ups. A full queue
// returns a *spool.QueueFullError with RetryAfter set.
func (e *Engine) insert(ctx context.Context, recs []*store.Record, depth map[string]int64, now time.Time) ([]EnqueueResult, error) {
	res, err := e.st.Insert(ctx, store.InsertParams{Jobs: recs, MaxDepth: depth})
	if err != nil {
		var qf *spool.QueueFullError
		if errors.As(err, &qf) {
			n := 0
			for _, r := range recs {
				if r.Queue == qf.Queue {
					n++
				}
			}
			qf.RetryAfter = retryAfter(qf.Depth, qf.MaxDepth, n, e.drainRate(ctx, qf.Queue), rateWindow)
			e.m.rejected(qf.Queue)
			return nil, qf
		}
		return nil, err
	}
	out := make([]EnqueueResult, len(res))
	created := make(map[string]int)
	ready := make(map[string]bool)
	scheduled := false
	evs := make([]spool.JobEvent, 0, len(res))
	for i, r := range res {
		out[i] = EnqueueResult{Job: ownedView(r.Record), Existing: r.Existing}
		if r.Existing {
			continue
		}
		evs = append(evs, jobEventOf(r.Record, now))
		q := r.Record.Queue
		created[q]++
		switch r.Record.State {
		case spool.StateReady:
			ready[q] = true
		case spool.StateScheduled:
			scheduled = true
		}
	}
	e.emit(evs...)
	for q, n := range created {
		e.tele.arrived(q, now, n)
		e.m.enqueued(q, n)
	}
	for q := range ready {
		e.hub.queueReady(q)
	}
	if scheduled {
		e.poke()
	}
	return out, nil
}

// newRecord is fillRecord into a record of its own.
func (e *Engine) newRecord(queue string, r *spool.EnqueueRequest, qc spool.QueueConfig, now time.Time) *store.Record {
	rec := new(store.Record)
	e.fillRecord(rec, queue, r, qc, now, ptr(now))
	return rec
}

// fillRecord sets rec to a new job of queue made from r; readyAt (now) is
// its ReadyAt if it is ready at once.
func (e *Engine) fillRecord(rec *store.Record, queue string, r *spool.EnqueueRequest, qc spool.QueueConfig, now time.Time, readyAt *time.Time) {
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
		CallbackURL:    r.CallbackURL,
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
		j.ReadyAt = readyAt
	}
	*rec = store.Record{Job: j}
}
