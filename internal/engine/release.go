package engine

import (
	"context"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Release hands an active job back without finishing it: a worker that is
// shutting down, or that has no handler for the job's type, returns it so
// that another worker takes it at once instead of after the lease expires.
// The job becomes ready now and the attempt does not count: attempt goes
// back to what it was before the lease and no error is recorded. A job
// whose cancel was requested becomes cancelled instead. A stale token is
// spool.ErrLeaseLost, as for every worker call.
func (e *Engine) Release(ctx context.Context, id string, req spool.ReleaseRequest) (*spool.Job, error) {
	rec, err := e.mutate(ctx, id, func(r *store.Record) error {
		return e.applyRelease(r, req.Token)
	})
	if err != nil {
		return nil, err
	}
	e.afterRelease(rec)
	return view(rec), nil
}

// applyRelease undoes a lease: the record goes back to ready as it was
// before it was leased, lease fields cleared.
func (e *Engine) applyRelease(r *store.Record, token string) error {
	now := e.clock.Now()
	if err := checkLease(r, token, now); err != nil {
		return err
	}
	if r.CancelRequested {
		e.finish(r, spool.StateCancelled, now)
		return nil
	}
	e.release(r)
	if r.Attempt > 0 {
		r.Attempt--
	}
	r.State = spool.StateReady
	r.RunAt = now
	r.ReadyAt = ptr(now)
	r.StartedAt = nil
	// The progress belonged to the attempt that is being undone.
	r.Progress = nil
	return nil
}

// afterRelease does what follows a stored release. A release is neither a
// success nor a failure, so it feeds no rate and no retry metric: it only
// wakes the lease requests waiting on the job's queue. A release that
// turned into a cancel is an ordinary end of an active job.
func (e *Engine) afterRelease(r *store.Record) {
	if r.State == spool.StateReady {
		e.hub.queueReady(r.Queue)
		return
	}
	e.after(spool.StateActive, r)
}
