package client

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/spoolq/spool"
)

// task is one leased job running in a Worker.
type task struct {
	job   *Job
	token string
	// ctx is the parent of the handler's context; cancel ends both with
	// a cause.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// hctx is the handler's context (ctx with the job's timeout), set by
	// startClock in the task's goroutine, which alone reads it.
	hctx context.Context
	// settled is set by whoever decides the job's fate first: the handler
	// returning (its outcome is sent), the heartbeat learning that the
	// lease is lost or the job cancelled (nothing to send), or the
	// shutdown releasing it. The others then leave the job alone.
	settled atomic.Bool
	// until is the local estimate of the lease expiry (unix nanoseconds).
	until atomic.Int64
	// timeoutFrom says where job.Timeout comes from, for messages.
	timeoutFrom string
}

func (w *Worker) newTask(j *spool.Job, until time.Time) *task {
	t := &task{job: newJob(j), token: j.Lease.Token}
	t.until.Store(until.UnixNano())
	t.ctx, t.cancel = context.WithCancelCause(w.base)
	t.timeoutFrom = "the job's timeout"
	if t.job.Timeout == 0 && w.opts.DefaultJobTimeout > 0 {
		t.job.Timeout = w.opts.DefaultJobTimeout
		t.timeoutFrom = "the worker's default job timeout"
	}
	return t
}

// startClock gives the handler its context once it runs: the job's
// timeout counts from then, not from the lease (a prefetched job may wait
// for a free slot first).
func (t *task) startClock() (stop func()) {
	t.hctx = t.ctx
	if t.job.Timeout <= 0 {
		return func() {}
	}
	tctx, tcancel := context.WithTimeoutCause(t.ctx, t.job.Timeout, ErrJobTimeout)
	t.hctx = tctx
	return tcancel
}

// settle claims the right to decide the job's fate; false if taken.
func (t *task) settle() bool { return t.settled.CompareAndSwap(false, true) }

func (t *task) leaseUntil() time.Time { return time.Unix(0, t.until.Load()) }

// runTask runs a job's handler with heartbeats alongside, then hands its
// outcome to the ack batcher.
func (w *Worker) runTask(t *task, h HandlerFunc) {
	defer w.wg.Done()
	defer w.done(t)
	defer t.cancel(nil)

	hbCtx, hbStop := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		w.heartbeat(hbCtx, t)
	}()
	stopBeats := func() {
		hbStop()
		<-hbDone
	}
	defer stopBeats() // also when the handler calls runtime.Goexit

	if !w.acquireRun(t) {
		return
	}
	defer func() { <-w.run }()
	defer t.startClock()()
	w.running.Add(1)
	result, err := invoke(t, h)
	w.running.Add(-1)
	stopBeats()
	if !t.settle() {
		w.log.Debug("job outcome dropped: the job was cancelled, lost its lease or was released",
			"job_id", t.job.ID, "cause", context.Cause(t.ctx))
		return
	}
	a := w.outcome(t, result, err)
	if a.Outcome == spool.OutcomeFail {
		w.log.Info("job failed", "job_id", t.job.ID, "type", t.job.Type, "attempt", t.job.Attempt, "final", a.Final, "error", firstLine(a.Error))
	}
	w.acks.add(ackItem{ack: a, until: t.leaseUntil()})
}

// acquireRun waits for a free run slot for a leased task. It returns false,
// having settled the task, when the task must not run: the worker is
// stopping (the job is released at once, for another worker) or the job
// was lost or cancelled while it waited.
func (w *Worker) acquireRun(t *task) bool {
	select {
	case w.run <- struct{}{}:
	default:
		since := time.Now()
		select {
		case w.run <- struct{}{}:
			if w.opts.adaptive && time.Since(since) > prefetchWaitLimit {
				// Jobs take long enough for a prefetched one to wait:
				// lease less far ahead.
				w.shrinkPrefetch()
			}
		case <-w.stopping:
			w.releaseUnstarted(t)
			return false
		}
	}
	select {
	case <-w.stopping:
		<-w.run
		w.releaseUnstarted(t)
		return false
	default:
	}
	if t.ctx.Err() != nil {
		<-w.run
		return false // settled by whoever cancelled it
	}
	return true
}

// releaseUnstarted hands back a prefetched job that never ran.
func (w *Worker) releaseUnstarted(t *task) {
	if t.settle() {
		w.acks.add(ackItem{ack: spool.Ack{ID: t.job.ID, Token: t.token, Outcome: spool.OutcomeRelease}, until: t.leaseUntil()})
	}
	t.cancel(ErrWorkerStopped)
}

// invoke calls the handler, turning a panic into an error.
func invoke(t *task, h HandlerFunc) (result any, err error) {
	defer func() {
		if v := recover(); v != nil {
			result, err = nil, &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return h(t.hctx, t.job)
}

// outcome turns what a handler returned into its ack.
func (w *Worker) outcome(t *task, result any, err error) spool.Ack {
	a := spool.Ack{ID: t.job.ID, Token: t.token}
	if err == nil {
		raw, encErr := encodeJSON(result)
		if encErr == nil {
			a.Outcome, a.Result = spool.OutcomeComplete, raw
			return a
		}
		err = fmt.Errorf("the handler's result cannot be encoded as JSON: %w", encErr)
	}
	a.Outcome = spool.OutcomeFail
	msg := err.Error()
	if msg == "" {
		msg = fmt.Sprintf("the handler returned an error with an empty message (%T)", err)
	}
	if t.hctx.Err() != nil && errors.Is(context.Cause(t.hctx), ErrJobTimeout) {
		msg = fmt.Sprintf("timed out after %s (%s): %s", t.job.Timeout, t.timeoutFrom, msg)
	}
	var perm *permanentError
	if errors.As(err, &perm) {
		a.Final = true
	}
	var ri *retryInError
	if errors.As(err, &ri) {
		d := spool.Duration(ri.d)
		a.RetryIn = &d
	}
	a.Error = cutUTF8(msg, spool.MaxErrorLen)
	return a
}

// heartbeat extends the task's lease every HeartbeatInterval, and sooner
// to carry progress, until ctx ends. It cancels the handler when the lease
// is lost or the job cancelled.
func (w *Worker) heartbeat(ctx context.Context, t *task) {
	interval := w.opts.HeartbeatInterval
	extend := spool.Duration(w.opts.Lease)
	timer := time.NewTimer(interval)
	defer timer.Stop()
	var lastSent time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-t.job.progressed:
			if wait := w.opts.ProgressInterval - time.Since(lastSent); wait > 0 {
				// Too soon after the last beat: carry it with the beat
				// after wait (or the regular one, if that comes first).
				resetTimer(timer, wait)
				continue
			}
		}
		prog := t.job.pendingProgress()
		cctx, cancel := context.WithTimeout(ctx, max(interval, time.Second))
		sent := time.Now()
		resp, err := w.c.Heartbeat(cctx, t.job.ID, spool.HeartbeatRequest{Token: t.token, Extend: &extend, Progress: prog})
		cancel()
		if ctx.Err() != nil {
			return // the handler returned meanwhile
		}
		switch {
		case err == nil && (resp.CancelRequested || resp.State != spool.StateActive):
			w.abandon(t, ErrJobCancelled)
			return
		case err == nil:
			lastSent = sent
			t.until.Store(sent.Add(w.opts.Lease).UnixNano())
			t.job.sentProgress(prog)
			resetTimer(timer, interval)
		case errors.Is(err, spool.ErrLeaseLost), errors.Is(err, spool.ErrNotFound):
			w.log.Warn("job lease lost: cancelling its handler", "job_id", t.job.ID, "error", err)
			w.abandon(t, fmt.Errorf("%w: %v", spool.ErrLeaseLost, err))
			return
		case time.Now().After(t.leaseUntil()):
			w.log.Warn("job lease ran out with no heartbeat through: cancelling its handler", "job_id", t.job.ID, "error", err)
			w.abandon(t, fmt.Errorf("%w: no heartbeat got through before the lease ran out: %v", spool.ErrLeaseLost, err))
			return
		default:
			// The lease still runs: try again soon.
			w.log.Warn("heartbeat failed; retrying", "job_id", t.job.ID, "error", err)
			resetTimer(timer, min(interval/2, time.Until(t.leaseUntil())/2))
		}
	}
}

// abandon gives up a job the worker no longer holds: nothing is sent for
// it, and its handler's context is cancelled with cause.
func (w *Worker) abandon(t *task, cause error) {
	t.settle()
	t.cancel(cause)
}

// resetTimer sets a timer that may have fired to fire after d.
func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	t.Reset(max(d, 0))
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
