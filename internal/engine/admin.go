package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// BulkAction is what Bulk does to each job it selects.
type BulkAction string

// The bulk actions.
const (
	// BulkRetry retries dead and cancelled jobs, as Retry.
	BulkRetry BulkAction = "retry"
	// BulkCancel cancels jobs not started, as Cancel; active ones only
	// when the filter's state is active (they are marked
	// cancel_requested).
	BulkCancel BulkAction = "cancel"
	// BulkDelete deletes every job not active, as Delete.
	BulkDelete BulkAction = "delete"
)

// bulkBatch is how many jobs a bulk action reads, and writes, per store
// call: its memory and the length of each write are bounded whatever the
// number of jobs it applies to.
const bulkBatch = 500

// listParams is the store's ListJobsParams for a filter of queue.
func listParams(queue string, f *spool.JobFilter, after string, limit int) store.ListJobsParams {
	return store.ListJobsParams{Queue: queue, State: f.State, Type: f.Type, Tag: f.Tag,
		OrderingKey: f.OrderingKey, PayloadField: f.PayloadField, PayloadValue: f.PayloadValue,
		After: after, Limit: limit}
}

// check refuses a filter whose state the action never applies to.
func (a BulkAction) check(f *spool.JobFilter) error {
	if err := f.Validate(); err != nil {
		return err
	}
	switch a {
	case BulkRetry:
		if f.State != "" && f.State != spool.StateDead && f.State != spool.StateCancelled {
			return spool.Invalidf("state %q: only dead or cancelled jobs can be retried", f.State)
		}
	case BulkCancel:
		if f.State.Terminal() {
			return spool.Invalidf("state %q: finished jobs cannot be cancelled", f.State)
		}
	case BulkDelete:
		if f.State == spool.StateActive {
			return spool.Invalidf("state \"active\": active jobs cannot be deleted; cancel them first (jobs:cancel with state active) and delete them once they are cancelled")
		}
	default:
		return spool.Invalidf("unknown bulk action %q; use retry, cancel or delete", a)
	}
	return nil
}

// applies reports whether the action applies to a job in state st.
func (a BulkAction) applies(st spool.State, f *spool.JobFilter) bool {
	switch a {
	case BulkRetry:
		return st == spool.StateDead || st == spool.StateCancelled
	case BulkCancel:
		return !st.Terminal() && (st != spool.StateActive || f.State == spool.StateActive)
	case BulkDelete:
		return st != spool.StateActive
	}
	return false
}

// Bulk applies action to every job of queue that passes f and that the
// action applies to, bulkBatch jobs at a time, and returns how many it
// changed; with dryRun it changes nothing and counts the jobs it would
// change now. A job that changes while the action runs is skipped. Each
// batch is written on its own: when the action stops early (ctx ends, or
// a retry finds the queue full, *spool.QueueFullError) the jobs changed
// so far stay changed, and repeating the request goes on.
func (e *Engine) Bulk(ctx context.Context, queue string, action BulkAction, f spool.JobFilter, dryRun bool) (int64, error) {
	if err := spool.ValidateQueueName(queue); err != nil {
		return 0, err
	}
	if err := action.check(&f); err != nil {
		return 0, err
	}
	var total int64
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		recs, next, err := e.st.ListJobs(ctx, listParams(queue, &f, after, bulkBatch))
		if errors.Is(err, spool.ErrNotFound) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("listing jobs of %q: %w", queue, err)
		}
		picked := recs[:0]
		for _, r := range recs {
			if action.applies(r.State, &f) {
				picked = append(picked, r)
			}
		}
		n := int64(len(picked))
		if !dryRun && len(picked) > 0 {
			switch action {
			case BulkRetry:
				n, err = e.retryRecords(ctx, queue, picked)
			case BulkCancel:
				n, err = e.cancelRecords(ctx, picked)
			case BulkDelete:
				n, err = e.deleteRecords(ctx, picked)
			}
			total += n
			if err != nil {
				return total, err
			}
		} else {
			total += n
		}
		if next == "" {
			return total, nil
		}
		after = next
	}
}

// cancelRecords cancels jobs as Cancel does, in one write, and returns how
// many it changed.
func (e *Engine) cancelRecords(ctx context.Context, recs []*store.Record) (int64, error) {
	now := e.clock.Now()
	changes := make([]store.Change, 0, len(recs))
	prevs := make([]spool.State, 0, len(recs))
	for _, r := range recs {
		prev := r.State
		if e.cancelRecord(r, now) != nil {
			continue
		}
		changes = append(changes, store.Change{Record: r, NoBodies: true})
		prevs = append(prevs, prev)
	}
	return e.applyBulk(ctx, changes, prevs, nil)
}

// retryRecords retries dead and cancelled jobs of queue as Retry does, in
// one write, as many as the queue has room for, and returns how many it
// changed; a *spool.QueueFullError when some found no room. A job whose
// parent is dead or cancelled is skipped.
func (e *Engine) retryRecords(ctx context.Context, queue string, recs []*store.Record) (int64, error) {
	qc, err := e.queueConfig(ctx, queue)
	if err != nil {
		return 0, err
	}
	q, err := e.st.Queue(ctx, queue)
	if err != nil {
		return 0, fmt.Errorf("reading queue %q: %w", queue, err)
	}
	depth := depthOf(q.Counts)
	room := max(*qc.MaxDepth-depth, 0)
	var full error
	if int64(len(recs)) > room {
		full = &spool.QueueFullError{Queue: queue, Depth: depth, MaxDepth: *qc.MaxDepth,
			RetryAfter: retryAfter(depth, *qc.MaxDepth, int(int64(len(recs))-room), e.drainRate(ctx, queue), rateWindow)}
		recs = recs[:room]
	}
	now := e.clock.Now()
	changes := make([]store.Change, 0, len(recs))
	prevs := make([]spool.State, 0, len(recs))
	for _, r := range recs {
		prev := r.State
		if err := e.retryRecord(ctx, r, now); err != nil {
			if errors.Is(err, spool.ErrConflict) {
				continue // a parent is dead or cancelled
			}
			return 0, err
		}
		changes = append(changes, store.Change{Record: r, NoBodies: true})
		prevs = append(prevs, prev)
	}
	n, err := e.applyBulk(ctx, changes, prevs, nil)
	if err == nil {
		err = full
	}
	return n, err
}

// deleteRecords deletes jobs that are not active: those not finished are
// cancelled first (without webhook: the job is gone), then all are
// deleted. It returns how many it deleted.
func (e *Engine) deleteRecords(ctx context.Context, recs []*store.Record) (int64, error) {
	now := e.clock.Now()
	del := make([]store.JobRev, 0, len(recs))
	changes := make([]store.Change, 0, len(recs))
	prevs := make([]spool.State, 0, len(recs))
	for _, r := range recs {
		switch {
		case r.State.Terminal():
			del = append(del, store.JobRev{ID: r.ID, Rev: r.Rev})
		case r.State != spool.StateActive:
			prevs = append(prevs, r.State)
			e.finish(r, spool.StateCancelled, now)
			changes = append(changes, store.Change{Record: r, NoBodies: true})
		}
	}
	if len(changes) > 0 {
		if _, err := e.applyBulk(ctx, changes, prevs, func(r *store.Record) {
			del = append(del, store.JobRev{ID: r.ID, Rev: r.Rev})
		}); err != nil {
			return 0, err
		}
	}
	if len(del) == 0 {
		return 0, nil
	}
	errs, err := e.st.Delete(ctx, store.DeleteParams{Jobs: del})
	if err != nil {
		return 0, fmt.Errorf("deleting jobs: %w", err)
	}
	var n int64
	for _, err := range errs {
		if err == nil {
			n++
		}
	}
	return n, nil
}

// applyBulk writes changes (prevs: each job's state before) in one store
// call, with webhook deliveries unless done is set (done is called with
// each stored record instead), does what follows each stored change, and
// returns how many were stored; the others changed meanwhile.
func (e *Engine) applyBulk(ctx context.Context, changes []store.Change, prevs []spool.State, done func(*store.Record)) (int64, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	var (
		recs []*store.Record
		errs []error
		err  error
	)
	if done == nil {
		recs, errs, err = e.update(ctx, changes)
	} else {
		recs, errs, err = e.st.Update(ctx, changes)
	}
	if err != nil {
		return 0, fmt.Errorf("updating jobs: %w", err)
	}
	var n int64
	for i, r := range recs {
		if errs[i] != nil {
			continue
		}
		n++
		e.after(prevs[i], r)
		if done != nil {
			done(r)
		}
	}
	return n, nil
}

// Delete deletes a job that is not active, with its payload and result.
// A job not finished is cancelled first (jobs that depend on it are then
// cancelled, as when it is cancelled); an active job must be cancelled
// first, and deleted once its worker has stopped.
func (e *Engine) Delete(ctx context.Context, id string) error {
	for try := 0; ; try++ {
		rec, err := e.st.Get(ctx, id)
		if err != nil {
			return e.notFound(id, err)
		}
		if rec.State == spool.StateActive {
			return spool.Conflictf("job %s is active; cancel it first (its worker is told at its next heartbeat) and delete it once it is cancelled", id)
		}
		if !rec.State.Terminal() {
			// Deleting an unfinished delivery would cancel it.
			if err := notInternal(rec, "deleted before it has finished"); err != nil {
				return err
			}
		}
		n, err := e.deleteRecords(ctx, []*store.Record{rec})
		if err != nil || n == 1 {
			return err
		}
		if try >= 8 {
			return spool.Conflictf("job %s keeps changing; try again", id)
		}
	}
}

// DeleteQueue deletes a queue: every job of it, its topic subscriptions
// and its settings. A queue with active jobs is refused (cancel them
// first). It returns how many jobs it deleted. A job enqueued afterwards
// creates the queue again, with the defaults.
func (e *Engine) DeleteQueue(ctx context.Context, name string) (int64, error) {
	if err := spool.ValidateQueueName(name); err != nil {
		return 0, err
	}
	q, err := e.st.Queue(ctx, name)
	if errors.Is(err, spool.ErrNotFound) {
		return 0, spool.NotFoundf("no queue named %q", name)
	}
	if err != nil {
		return 0, fmt.Errorf("reading queue %q: %w", name, err)
	}
	if n := q.Counts[spool.StateActive]; n > 0 {
		return 0, spool.Conflictf("queue %q has %d active jobs; cancel them first (jobs:cancel with state active) and delete the queue once their workers have stopped", name, n)
	}
	n, err := e.Bulk(ctx, name, BulkDelete, spool.JobFilter{}, false)
	if err != nil {
		return n, err
	}
	subs, err := e.st.Subscriptions(ctx, store.SubscriptionsParams{})
	if err != nil {
		return n, fmt.Errorf("listing subscriptions: %w", err)
	}
	for _, s := range subs {
		if s.Queue != name {
			continue
		}
		if err := e.st.DeleteSubscription(ctx, s.Topic, s.Queue); err != nil && !errors.Is(err, spool.ErrNotFound) {
			return n, fmt.Errorf("unsubscribing queue %q from topic %q: %w", name, s.Topic, err)
		}
	}
	err = e.st.DeleteQueue(ctx, name)
	e.forgetConfig(name)
	switch {
	case errors.Is(err, spool.ErrConflict):
		return n, spool.Conflictf("jobs reached queue %q while it was being deleted (%d deleted); try again", name, n)
	case errors.Is(err, spool.ErrNotFound):
		return n, nil
	case err != nil:
		return n, fmt.Errorf("deleting queue %q: %w", name, err)
	}
	return n, nil
}
