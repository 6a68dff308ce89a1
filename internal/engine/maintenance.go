package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// maintenanceBatch bounds the work of one store call in maintenance.
const maintenanceBatch = 1000

// poke asks the maintenance loop to run a pass soon (a job was scheduled).
func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// maintenanceLoop runs a full pass (Maintain) at start and then every
// MaintenanceInterval, and in between promotes due jobs when the store
// says the next one is due (its optional NextDue) or a job was just
// scheduled (poke): a job is promoted on time without running the whole
// pass (expiry and purge, several store calls) at every due instant.
func (e *Engine) maintenanceLoop(ctx context.Context) {
	full := time.NewTicker(e.cfg.MaintenanceInterval)
	defer full.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	var fl failureLog
	fl.note(ctx, e.log, e.Maintain(ctx))
	for {
		if fl.failed == 0 {
			e.armDue(due)
		} else {
			// The store fails: retry at the full passes only, rather
			// than at every due instant.
			due.Stop()
		}
		var err error
		select {
		case <-ctx.Done():
			return
		case <-full.C:
			err = e.Maintain(ctx)
		case <-due.C:
			err = e.promote(ctx)
		case <-e.wake:
			// A newly scheduled job may be due before the next pass.
			err = e.promote(ctx)
		}
		fl.note(ctx, e.log, err)
	}
}

// armDue sets the due timer to the store's next due job, if it knows one
// (the full passes cover the rest).
func (e *Engine) armDue(due *time.Timer) {
	next, ok := e.st.(interface{ NextDue() (time.Time, bool) })
	if !ok {
		due.Stop()
		return
	}
	at, ok := next.NextDue()
	if !ok {
		due.Stop()
		return
	}
	d := at.Sub(e.clock.Now())
	if d < time.Millisecond {
		d = time.Millisecond
	}
	due.Reset(d)
}

// failureLog logs the first failure of a run of failed passes as a
// warning and the rest at debug level, so that a database that is down
// for a minute does not fill the log, and says when passes work again.
type failureLog struct{ failed int }

func (f *failureLog) note(ctx context.Context, log *slog.Logger, err error) {
	switch {
	case ctx.Err() != nil:
	case err != nil && f.failed == 0:
		f.failed++
		log.Warn("maintenance pass failed; retrying (further failures are logged at debug level)", "error", err)
	case err != nil:
		f.failed++
		log.Debug("maintenance pass failed", "error", err, "failures", f.failed)
	case f.failed > 0:
		log.Info("maintenance passes succeed again", "failed_passes", f.failed)
		f.failed = 0
	}
}

// Maintain runs one maintenance pass: promote due jobs, expire lapsed
// leases, purge finished jobs past retention, resolve the children of
// finished jobs. Every step is idempotent and safe to run on several nodes
// at once.
func (e *Engine) Maintain(ctx context.Context) error {
	err := errors.Join(e.promote(ctx), e.expire(ctx), e.purge(ctx))
	return errors.Join(err, e.ResolveDependencies(ctx))
}

func (e *Engine) promote(ctx context.Context) error {
	for {
		qs, err := e.st.PromoteDue(ctx, e.clock.Now(), maintenanceBatch)
		if err != nil {
			return fmt.Errorf("promoting due jobs: %w", err)
		}
		for _, q := range qs {
			e.hub.queueReady(q)
		}
		if len(qs) == 0 || ctx.Err() != nil {
			return nil
		}
	}
}

// expire treats each lapsed lease as a failed attempt.
func (e *Engine) expire(ctx context.Context) error {
	for {
		now := e.clock.Now()
		recs, err := e.st.ExpiredLeases(ctx, now, maintenanceBatch)
		if err != nil {
			return fmt.Errorf("finding expired leases: %w", err)
		}
		if len(recs) == 0 {
			return nil
		}
		changes := make([]store.Change, 0, len(recs))
		for _, r := range recs {
			qc, err := e.queueConfig(ctx, r.Queue)
			if err != nil {
				return err
			}
			msg := "lease expired"
			if r.Worker != "" {
				msg = fmt.Sprintf("lease expired (worker %s stopped heartbeating)", r.Worker)
			}
			e.failAttempt(r, qc, msg, nil, false, now)
			changes = append(changes, store.Change{Record: r, NoBodies: true})
		}
		out, errs, err := e.update(ctx, changes)
		if err != nil {
			return fmt.Errorf("expiring %d leases: %w", len(changes), err)
		}
		for i, rec := range out {
			if errs[i] != nil {
				continue // acked or extended meanwhile: it is not ours to expire
			}
			e.m.expired(rec.Queue)
			e.after(spool.StateActive, rec)
		}
		if len(recs) < maintenanceBatch || ctx.Err() != nil {
			return nil
		}
	}
}

func (e *Engine) purge(ctx context.Context) error {
	qs, err := e.st.Queues(ctx)
	if err != nil {
		return fmt.Errorf("listing queues to purge: %w", err)
	}
	now := e.clock.Now()
	var errs []error
	for _, q := range qs {
		if q.Counts[spool.StateSucceeded]+q.Counts[spool.StateDead]+q.Counts[spool.StateCancelled] == 0 {
			continue
		}
		qc := e.resolve(q.Config)
		before := now.Add(-qc.Retention.D())
		for {
			n, err := e.st.Purge(ctx, q.Name, before, maintenanceBatch)
			if err != nil {
				errs = append(errs, fmt.Errorf("purging %q: %w", q.Name, err))
				break
			}
			if n > 0 {
				e.m.purged(q.Name, n)
			}
			if n < maintenanceBatch || ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}
