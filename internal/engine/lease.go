package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// Lease claims ready jobs from the queues, in their order, long-polling up
// to req.Wait when none is ready. Paused queues hand out nothing. The
// returned jobs carry their lease token.
func (e *Engine) Lease(ctx context.Context, req spool.LeaseRequest) ([]*spool.Job, error) {
	max := req.Max
	if max <= 0 {
		max = 1
	}
	leaseFor := e.cfg.Defaults.Lease
	if req.Lease != nil {
		leaseFor = req.Lease.D()
	}
	var wait time.Duration
	if req.Wait != nil {
		wait = req.Wait.D()
	}
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	w := newWaiter()
	e.hub.watchQueues(req.Queues, w)
	defer e.hub.unwatchQueues(req.Queues, w)
	var refill refillTimer
	defer refill.stop()
	for {
		if ctx.Err() != nil {
			return []*spool.Job{}, nil
		}
		jobs, next, err := e.leaseOnce(ctx, req.Queues, max, leaseFor, req.Worker)
		if len(jobs) > 0 && ctx.Err() != nil {
			// The caller left (a worker shutting down cancels its
			// long-poll): nobody will see these leases, so hand the jobs
			// back now instead of leaving them active until they expire.
			e.handBack(jobs)
			return []*spool.Job{}, nil
		}
		if err != nil || len(jobs) > 0 || wait <= 0 {
			return jobs, err
		}
		// A rate-limited queue may have jobs ready and no token: look
		// again when the next token is due.
		refill.set(next, e.clock.Now())
		select {
		case <-w.ch:
		case <-refill.c:
		case <-deadline:
			return []*spool.Job{}, nil
		case <-ctx.Done():
			return []*spool.Job{}, nil
		case <-e.stopped:
			return []*spool.Job{}, nil
		}
	}
}

// handBack releases jobs leased for a caller that is gone, without
// counting the attempt. A job that cannot be released (the store failing)
// stays active until its lease expires, as if its worker had vanished.
func (e *Engine) handBack(jobs []*spool.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, j := range jobs {
		if _, err := e.Release(ctx, j.ID, spool.ReleaseRequest{Token: j.Lease.Token}); err != nil {
			e.log.Warn("could not hand back a job leased for a caller that left", "job_id", j.ID, "error", err)
		}
	}
}

// leaseOnce leases what it can now. next, when not zero, is when a
// rate-limited queue of queues has its next token.
func (e *Engine) leaseOnce(ctx context.Context, queues []string, max int, leaseFor time.Duration, worker string) (jobs []*spool.Job, next time.Time, err error) {
	open := make([]string, 0, len(queues))
	var limits map[string]store.QueueLimits
	for _, q := range queues {
		qc, err := e.queueConfig(ctx, q)
		if err != nil {
			return nil, next, err
		}
		if *qc.Paused {
			continue
		}
		open = append(open, q)
		if lim, ok := limitsOf(qc); ok {
			if limits == nil {
				limits = make(map[string]store.QueueLimits)
			}
			limits[q] = lim
		}
	}
	if len(open) == 0 {
		return []*spool.Job{}, next, nil
	}
	now := e.clock.Now()
	p := store.LeaseParams{
		Queues:    open,
		Max:       max,
		Worker:    worker,
		Now:       now,
		ExpiresAt: now.Add(leaseFor),
		NewToken:  e.cfg.NewToken,
	}
	if limits != nil {
		p.Limits = limits
		p.Throttled = func(_ string, at time.Time) {
			if next.IsZero() || at.Before(next) {
				next = at
			}
		}
	}
	recs, err := e.st.Lease(ctx, p)
	if err != nil {
		return nil, next, fmt.Errorf("leasing from %v: %w", open, err)
	}
	jobs = make([]*spool.Job, len(recs))
	evs := make([]spool.JobEvent, len(recs))
	for i, r := range recs {
		evs[i] = jobEventOf(r, now)
		j := ownedView(r)
		j.Lease = &spool.Lease{Token: r.Token, ExpiresAt: *r.LeaseExpiresAt}
		jobs[i] = j
		if r.ReadyAt != nil {
			e.m.queueWait(r.Queue, now.Sub(*r.ReadyAt))
		}
	}
	e.tele.waited(recs, now)
	e.emit(evs...)
	return jobs, next, nil
}

// checkLease fails with ErrLeaseLost unless the record is active under
// token and its lease has not lapsed by now: a lease is over at the instant
// it expires, not at the maintenance pass that hands the job out again.
func checkLease(r *store.Record, token string, now time.Time) error {
	if r.State != spool.StateActive || r.Token == "" || r.Token != token {
		if r.State == spool.StateActive {
			return spool.LeaseLostf("job %s: the lease token is not the current one (the lease expired and the job went to another worker)", r.ID)
		}
		return spool.LeaseLostf("job %s is %s, not leased by this token", r.ID, r.State)
	}
	if r.LeaseExpiresAt != nil && !now.Before(*r.LeaseExpiresAt) {
		return spool.LeaseLostf("job %s: the lease expired at %s; the job will be delivered again (heartbeat before the lease expires to keep it)",
			r.ID, r.LeaseExpiresAt.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// Heartbeat extends a lease and records progress. If the job was cancelled
// meanwhile, the job becomes cancelled and the answer says so; if its
// timeout has passed, the attempt fails and the lease is lost.
func (e *Engine) Heartbeat(ctx context.Context, id string, req spool.HeartbeatRequest) (*spool.HeartbeatResponse, error) {
	extend := e.cfg.Defaults.Lease
	if req.Extend != nil {
		extend = req.Extend.D()
	}
	var (
		timedOut bool
		prev     spool.State
	)
	rec, err := e.mutate(ctx, id, func(r *store.Record) error {
		now := e.clock.Now()
		if err := checkLease(r, req.Token, now); err != nil {
			return err
		}
		prev = r.State
		timedOut = false
		switch {
		case r.CancelRequested:
			e.finish(r, spool.StateCancelled, now)
		case r.Timeout > 0 && r.StartedAt != nil && now.Sub(*r.StartedAt) > r.Timeout.D():
			timedOut = true
			qc, err := e.queueConfig(ctx, r.Queue)
			if err != nil {
				return err
			}
			e.failAttempt(r, qc, fmt.Sprintf("timed out after %s (timeout %s)", now.Sub(*r.StartedAt).Round(time.Millisecond), r.Timeout.D()), nil, false, now)
		default:
			r.LeaseExpiresAt = ptr(now.Add(extend))
			if p := req.Progress; p != nil {
				r.Progress = &spool.Progress{Percent: p.Percent, Message: p.Message, UpdatedAt: now}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.after(prev, rec)
	if timedOut {
		return nil, spool.LeaseLostf("job %s ran past its timeout of %s; the attempt failed", id, rec.Timeout.D())
	}
	resp := &spool.HeartbeatResponse{State: rec.State, CancelRequested: rec.State == spool.StateCancelled}
	if rec.LeaseExpiresAt != nil {
		resp.LeaseExpiresAt = ptr(*rec.LeaseExpiresAt)
	}
	return resp, nil
}

// Complete records a job's success and its result.
func (e *Engine) Complete(ctx context.Context, id string, req spool.CompleteRequest) (*spool.Job, error) {
	rec, err := e.mutate(ctx, id, func(r *store.Record) error {
		return e.applyComplete(r, req.Token, req.Result)
	})
	if err != nil {
		return nil, err
	}
	e.after(spool.StateActive, rec)
	return view(rec), nil
}

func (e *Engine) applyComplete(r *store.Record, token string, result json.RawMessage) error {
	now := e.clock.Now()
	if err := checkLease(r, token, now); err != nil {
		return err
	}
	if len(result) > 0 {
		r.Result = result
	}
	if r.CancelRequested {
		e.finish(r, spool.StateCancelled, now)
	} else {
		e.finish(r, spool.StateSucceeded, now)
	}
	return nil
}

// Fail records a failed attempt: the job is retried after a backoff (or
// req.RetryIn), or goes dead when req.Final is set or attempts are spent.
func (e *Engine) Fail(ctx context.Context, id string, req spool.FailRequest) (*spool.Job, error) {
	rec, err := e.mutate(ctx, id, func(r *store.Record) error {
		return e.applyFail(ctx, r, req.Token, req.Error, req.RetryIn, req.Final)
	})
	if err != nil {
		return nil, err
	}
	e.after(spool.StateActive, rec)
	return view(rec), nil
}

func (e *Engine) applyFail(ctx context.Context, r *store.Record, token, msg string, retryIn *spool.Duration, final bool) error {
	now := e.clock.Now()
	if err := checkLease(r, token, now); err != nil {
		return err
	}
	qc, err := e.queueConfig(ctx, r.Queue)
	if err != nil {
		return err
	}
	if msg == "" {
		msg = "failed (no error message given)"
	}
	e.failAttempt(r, qc, msg, retryIn, final, now)
	return nil
}

// failAttempt is the one place that decides what follows a failed attempt.
func (e *Engine) failAttempt(r *store.Record, qc spool.QueueConfig, msg string, retryIn *spool.Duration, final bool, now time.Time) {
	r.Errors = append(r.Errors, spool.AttemptError{Attempt: r.Attempt, Error: msg, At: now})
	switch {
	case r.CancelRequested:
		e.finish(r, spool.StateCancelled, now)
	case final || r.Attempt >= r.MaxAttempts:
		e.finish(r, spool.StateDead, now)
	default:
		var d time.Duration
		if retryIn != nil {
			d = retryIn.D()
		} else {
			base, max := e.policy(&r.Job, qc)
			d = backoffDelay(r.Attempt, base, max, e.cfg.Rand())
		}
		e.release(r)
		r.RunAt = now.Add(d)
		if d <= 0 {
			r.State = spool.StateReady
			r.ReadyAt = ptr(now)
		} else {
			r.State = spool.StateScheduled
			r.ReadyAt = nil
		}
	}
}

// release drops the lease fields of a record leaving active.
func (e *Engine) release(r *store.Record) {
	r.Token = ""
	r.LeaseExpiresAt = nil
}

// finish moves a record to a terminal state.
func (e *Engine) finish(r *store.Record, s spool.State, now time.Time) {
	e.release(r)
	r.State = s
	r.FinishedAt = ptr(now)
	r.ReadyAt = nil
}

// after does what follows a stored transition from prev: metrics, rates,
// and waking whoever waits on the job or its queue.
func (e *Engine) after(prev spool.State, r *store.Record) {
	if prev == r.State && r.State != spool.StateActive {
		return
	}
	now := e.clock.Now()
	if prev != r.State {
		e.emit(jobEventOf(r, now))
		e.freed(prev, r)
	}
	switch r.State {
	case spool.StateReady:
		e.hub.queueReady(r.Queue)
	case spool.StateScheduled:
		e.poke()
	}
	if prev == spool.StateActive && r.State != spool.StateActive {
		if r.StartedAt != nil {
			e.m.runTime(r.Queue, now.Sub(*r.StartedAt))
		}
	}
	e.tele.left(prev, r, now)
	if r.State.Terminal() {
		e.m.finished(r.Queue, r.State)
		e.hub.jobChanged(r.ID)
		if prev != r.State {
			e.deps.add(r.ID)
		}
	} else if prev == spool.StateActive && r.State != spool.StateActive {
		e.m.retried(r.Queue)
	}
}

// Ack applies many completes, fails and releases; each stands alone.
// Successful changes are written together, sharing one sync.
func (e *Engine) Ack(ctx context.Context, acks []spool.Ack) ([]spool.AckResult, error) {
	// A malformed id refuses the whole request before anything is read
	// or written, whatever the store would make of it.
	for i, a := range acks {
		if _, ok := spool.ParseJobID(a.ID); !ok {
			return nil, spool.Invalidf("acks[%d]: id %.40q is not a job id (a UUID)", i, a.ID)
		}
	}
	out := make([]spool.AckResult, len(acks))
	pending := make([]int, 0, len(acks))
	changes := make([]store.Change, 0, len(acks))
	// One read of every job, without payloads and results: an ack needs
	// neither (a result given is written, an absent one left alone).
	ids := make([]string, len(acks))
	for i, a := range acks {
		ids[i] = a.ID
	}
	found, err := e.st.Lookup(ctx, ids)
	if err != nil {
		// Nothing is written yet: fail the whole request (503 when the
		// store is down) so the worker sends it again rather than
		// dropping its acks.
		return nil, fmt.Errorf("reading %d jobs to ack them: %w", len(acks), err)
	}
	type lookedUp struct {
		rec  *store.Record
		used bool
	}
	byID := make(map[string]lookedUp, len(found))
	for _, r := range found {
		byID[r.ID] = lookedUp{rec: r}
	}
	for i, a := range acks {
		out[i].ID = a.ID
		var err error
		if l := byID[a.ID]; l.rec == nil {
			err = spool.NotFoundf("no job with id %q", a.ID)
		} else {
			// The records read are ours to change. A job acked twice in
			// one batch gets a copy the second time: that change then
			// conflicts and is retried alone.
			rec := l.rec
			if l.used {
				rec = rec.Clone()
			} else {
				byID[a.ID] = lookedUp{rec: rec, used: true}
			}
			if err = e.applyAck(ctx, rec, a); err == nil {
				pending = append(pending, i)
				changes = append(changes, store.Change{Record: rec, NoBodies: true})
				continue
			}
		}
		out[i].Error = errorDetail(err)
	}
	if len(changes) == 0 {
		return out, nil
	}
	recs, errs, err := e.update(ctx, changes)
	if err != nil {
		return nil, fmt.Errorf("writing %d acks: %w", len(changes), err)
	}
	for k, i := range pending {
		if errs[k] != nil {
			// The job changed between the read and the write: its lease
			// moved on (expiry) or it was touched by a cancel. Retry alone.
			var rec *store.Record
			a := acks[i]
			rec, err = e.mutate(ctx, a.ID, func(r *store.Record) error {
				return e.applyAck(ctx, r, a)
			})
			if err != nil {
				out[i].Error = errorDetail(err)
				continue
			}
			recs[k] = rec
		}
		out[i].State = recs[k].State
		if acks[i].Outcome == spool.OutcomeRelease {
			e.afterRelease(recs[k])
		} else {
			e.after(spool.StateActive, recs[k])
		}
	}
	return out, nil
}

// applyAck applies one element of a batch ack to its record.
func (e *Engine) applyAck(ctx context.Context, r *store.Record, a spool.Ack) error {
	switch a.Outcome {
	case spool.OutcomeComplete:
		return e.applyComplete(r, a.Token, a.Result)
	case spool.OutcomeFail:
		return e.applyFail(ctx, r, a.Token, a.Error, a.RetryIn, a.Final)
	case spool.OutcomeRelease:
		return e.applyRelease(r, a.Token)
	}
	return spool.Invalidf("outcome must be %q, %q or %q", spool.OutcomeComplete, spool.OutcomeFail, spool.OutcomeRelease)
}

// errorDetail is the client-safe form of an error of a batch element.
func errorDetail(err error) *spool.ErrorDetail {
	code := spool.Code(err)
	msg := err.Error()
	if code == spool.CodeInternal {
		msg = "internal error"
	}
	return &spool.ErrorDetail{Code: code, Message: msg}
}
