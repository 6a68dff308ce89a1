package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Get returns a job. With wait > 0 it long-polls until the job reaches a
// terminal state, the wait ends or ctx is done, and returns the job as it is
// then.
func (e *Engine) Get(ctx context.Context, id string, wait time.Duration) (*spool.Job, error) {
	if wait <= 0 {
		rec, err := e.st.Get(ctx, id)
		if err != nil {
			return nil, e.notFound(id, err)
		}
		return view(rec), nil
	}
	w := newWaiter()
	e.hub.watchJob(id, w)
	defer e.hub.unwatchJob(id, w)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		rec, err := e.st.Get(ctx, id)
		if err != nil {
			return nil, e.notFound(id, err)
		}
		if rec.State.Terminal() {
			return view(rec), nil
		}
		select {
		case <-w.ch:
		case <-t.C:
			return view(rec), nil
		case <-ctx.Done():
			return view(rec), nil
		case <-e.stopped:
			return view(rec), nil
		}
	}
}

// Cancel cancels a job that has not started (waiting, scheduled, ready). An
// active job is marked cancel_requested and becomes cancelled at its
// worker's next heartbeat or ack. A finished job cannot be cancelled.
func (e *Engine) Cancel(ctx context.Context, id string) (*spool.Job, error) {
	var prev spool.State
	rec, err := e.mutate(ctx, id, func(r *store.Record) error {
		prev = r.State
		if err := notInternal(r, "cancelled"); err != nil {
			return err
		}
		return e.cancelRecord(r, e.clock.Now())
	})
	if err != nil {
		return nil, err
	}
	e.after(prev, rec)
	return view(rec), nil
}

// notInternal refuses to let a client change a job of an internal queue
// (a webhook delivery): only the server retries a delivery, each attempt
// signed afresh.
func notInternal(r *store.Record, what string) error {
	if IsInternalQueue(r.Queue) {
		return spool.Conflictf("job %s is one of the server's webhook deliveries (queue %s): only the server retries or ends it, so it cannot be %s", r.ID, r.Queue, what)
	}
	return nil
}

// cancelRecord applies Cancel's rule to r.
func (e *Engine) cancelRecord(r *store.Record, now time.Time) error {
	switch r.State {
	case spool.StateWaiting, spool.StateScheduled, spool.StateReady:
		e.finish(r, spool.StateCancelled, now)
	case spool.StateActive:
		r.CancelRequested = true
	default:
		return spool.Conflictf("job %s is already %s", r.ID, r.State)
	}
	return nil
}

// Retry puts a dead or cancelled job back in its queue as ready, with a
// fresh set of attempts; its past errors are kept. A job with parents
// goes back to waiting if a parent has not finished yet, and cannot be
// retried while a parent is dead or cancelled.
func (e *Engine) Retry(ctx context.Context, id string) (*spool.Job, error) {
	var prev spool.State
	rec, err := e.mutate(ctx, id, func(r *store.Record) error {
		prev = r.State
		if err := notInternal(r, "retried"); err != nil {
			return err
		}
		if r.State != spool.StateDead && r.State != spool.StateCancelled {
			return spool.Conflictf("job %s is %s; only dead or cancelled jobs can be retried", r.ID, r.State)
		}
		if err := e.admitOne(ctx, r.Queue); err != nil {
			return err
		}
		return e.retryRecord(ctx, r, e.clock.Now())
	})
	if err != nil {
		return nil, err
	}
	e.after(prev, rec)
	return view(rec), nil
}

// retryRecord applies Retry's rule to r, a dead or cancelled job, once it
// is admitted.
func (e *Engine) retryRecord(ctx context.Context, r *store.Record, now time.Time) error {
	v := verdict{}
	if len(r.DependsOn) > 0 {
		var err error
		if v, err = e.retryVerdict(ctx, r); err != nil {
			return err
		}
	}
	r.State = spool.StateReady
	r.RunAt = now
	r.ReadyAt = ptr(now)
	if v.wait {
		r.State, r.ReadyAt = spool.StateWaiting, nil
	}
	r.FinishedAt = nil
	r.StartedAt = nil
	r.Progress = nil
	r.Worker = ""
	r.CancelRequested = false
	r.Attempt = 0
	return nil
}

// admitOne checks that a queue has room for one more job. Unlike Insert the
// check is not atomic with the write: a retried job may overshoot max_depth
// by the number of concurrent retries.
func (e *Engine) admitOne(ctx context.Context, queue string) error {
	qc, err := e.queueConfig(ctx, queue)
	if err != nil {
		return err
	}
	q, err := e.st.Queue(ctx, queue)
	if err != nil {
		return fmt.Errorf("reading queue %q: %w", queue, err)
	}
	depth := depthOf(q.Counts)
	if depth+1 > *qc.MaxDepth {
		return &spool.QueueFullError{Queue: queue, Depth: depth, MaxDepth: *qc.MaxDepth,
			RetryAfter: retryAfter(depth, *qc.MaxDepth, 1, e.drainRate(ctx, queue), rateWindow)}
	}
	return nil
}

func depthOf(counts map[spool.State]int64) int64 {
	var d int64
	for s, n := range counts {
		if !s.Terminal() {
			d += n
		}
	}
	return d
}

// ListParams selects a page of a queue's jobs.
type ListParams struct {
	Queue string
	spool.JobFilter
	Cursor string
	Limit  int
}

// Page limits of ListJobs.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// ListJobs returns one page of a queue's jobs in id (creation) order.
func (e *Engine) ListJobs(ctx context.Context, p ListParams) (*spool.JobList, error) {
	if err := validateReadableQueue(p.Queue); err != nil {
		return nil, err
	}
	if p.State != "" && !p.State.Valid() {
		return nil, spool.Invalidf("unknown state %q; use one of %v", p.State, spool.States)
	}
	if err := p.JobFilter.Validate(); err != nil {
		return nil, err
	}
	if p.Limit == 0 {
		p.Limit = DefaultPageSize
	}
	if p.Limit < 0 || p.Limit > MaxPageSize {
		return nil, spool.Invalidf("limit must be between 1 and %d", MaxPageSize)
	}
	if p.Cursor != "" {
		// A cursor is the id of the last job of a page.
		id, ok := spool.ParseJobID(p.Cursor)
		if !ok {
			return nil, spool.Invalidf("cursor %.40q is not one this server returned; pass next_cursor of the page before, or none for the first page", p.Cursor)
		}
		p.Cursor = id
	}
	recs, next, err := e.st.ListJobs(ctx, listParams(p.Queue, &p.JobFilter, p.Cursor, p.Limit))
	if err != nil {
		if errors.Is(err, spool.ErrNotFound) {
			return &spool.JobList{Jobs: []*spool.Job{}}, nil
		}
		return nil, fmt.Errorf("listing jobs of %q: %w", p.Queue, err)
	}
	out := &spool.JobList{Jobs: make([]*spool.Job, len(recs)), NextCursor: next}
	for i, r := range recs {
		out.Jobs[i] = view(r)
	}
	return out, nil
}
