package engine

import (
	"context"
	"errors"
	"fmt"
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

func (e *Engine) maintenanceLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.wake:
			// A newly scheduled job may be due before the next pass:
			// passes are cheap, so run one now and sleep again.
		}
		if err := e.Maintain(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("maintenance pass failed", "error", err)
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(e.nextPass())
	}
}

// nextPass is how long the loop sleeps: the maintenance interval, or less
// when a scheduled job is due sooner.
func (e *Engine) nextPass() time.Duration {
	d := e.cfg.MaintenanceInterval
	if next, ok := e.st.(interface{ NextDue() (time.Time, bool) }); ok {
		if at, ok := next.NextDue(); ok {
			if until := at.Sub(e.clock.Now()); until < d {
				d = until
			}
		}
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// Maintain runs one maintenance pass: promote due jobs, expire lapsed
// leases, purge finished jobs past retention. Every step is idempotent and
// safe to run on several nodes at once.
func (e *Engine) Maintain(ctx context.Context) error {
	return errors.Join(e.promote(ctx), e.expire(ctx), e.purge(ctx))
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
			changes = append(changes, store.Change{Record: r})
		}
		out, errs, err := e.st.Update(ctx, changes)
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
