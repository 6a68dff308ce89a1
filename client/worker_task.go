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
	// ctx is the handler's context; cancel ends it with a cause.
	ctx    context.Context
	cancel context.CancelCauseFunc
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
	ctx, cancel := context.WithCancelCause(w.base)
	t.ctx, t.cancel = ctx, cancel
	t.timeoutFrom = "the job's timeout"
	if t.job.Timeout == 0 && w.opts.DefaultJobTimeout > 0 {
		t.job.Timeout = w.opts.DefaultJobTimeout
		t.timeoutFrom = "the worker's default job timeout"
	}
	if t.job.Timeout > 0 {
		tctx, tcancel := context.WithTimeoutCause(ctx, t.job.Timeout, ErrJobTimeout)
		t.ctx = tctx
		t.cancel = func(cause error) {
			cancel(cause)
			tcancel()
		}
	}
	return t
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

// invoke calls the handler, turning a panic into an error.
func invoke(t *task, h HandlerFunc) (result any, err error) {
	defer func() {
		if v := recover(); v != nil {
			result, err = nil, &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return h(t.ctx, t.job)
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
	if t.ctx.Err() != nil && errors.Is(context.Cause(t.ctx), ErrJobTimeout) {
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
