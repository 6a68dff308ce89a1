package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spoolq/spool"
)

// HandlerFunc runs one job for a Worker. It returns the job's result (any
// value encoding/json can marshal, raw JSON as json.RawMessage or []byte,
// or nil for none) or an error, which fails the attempt: the job is retried
// after its backoff, unless the error is Permanent or asks for another
// delay with RetryIn.
//
// ctx is cancelled when the work is no longer wanted: the job's timeout
// passed (context.Cause is ErrJobTimeout), its lease was lost (cause
// spool.ErrLeaseLost), it was cancelled (ErrJobCancelled), or the worker
// stopped and its shutdown grace ran out (ErrWorkerStopped). A handler
// should return soon after; what it returns then is dropped, except after a
// timeout, when it fails the attempt. A panic fails the attempt with the
// panic value and the stack; the worker keeps running.
type HandlerFunc func(ctx context.Context, job *Job) (result any, err error)

// Causes of a handler's context cancellation, from context.Cause.
var (
	// ErrJobTimeout: the job ran past its timeout; the attempt fails.
	ErrJobTimeout = errors.New("the job ran past its timeout")
	// ErrJobCancelled: the job was cancelled (DELETE /v1/jobs/{id}) while
	// it ran.
	ErrJobCancelled = errors.New("the job was cancelled")
	// ErrWorkerStopped: the worker is shutting down and the grace period
	// ran out; the job was released to another worker, its attempt not
	// counted.
	ErrWorkerStopped = errors.New("the worker stopped; the job was handed back")
)

// Job is a leased job as a handler sees it.
type Job struct {
	ID    string
	Queue string
	Type  string
	// Payload is the job's payload as raw JSON (nil if none); see Decode.
	Payload json.RawMessage
	// Attempt counts from 1: 2 is the first retry.
	Attempt     int
	MaxAttempts int
	Priority    int
	Tags        []string
	// Timeout is the job's timeout (or the worker's DefaultJobTimeout; 0
	// if none); the handler's context has the matching deadline.
	Timeout   time.Duration
	CreatedAt time.Time
	// Errors are those of earlier attempts.
	Errors []spool.AttemptError

	// progress is what Progress last recorded, for the next heartbeat.
	mu         sync.Mutex
	progress   *spool.ProgressUpdate
	dirty      bool
	progressed chan struct{}
}

func newJob(j *spool.Job) *Job {
	return &Job{
		ID:          j.ID,
		Queue:       j.Queue,
		Type:        j.Type,
		Payload:     j.Payload,
		Attempt:     j.Attempt,
		MaxAttempts: j.MaxAttempts,
		Priority:    j.Priority,
		Tags:        j.Tags,
		Timeout:     j.Timeout.D(),
		CreatedAt:   j.CreatedAt,
		Errors:      j.Errors,
		progressed:  make(chan struct{}, 1),
	}
}

// Decode unmarshals the payload into v. A job without a payload is an
// error. A payload that does not decode will not decode on a retry either:
// return the error as Permanent(err) to send the job to dead at once.
func (j *Job) Decode(v any) error {
	if len(j.Payload) == 0 {
		return fmt.Errorf("job %s (%s) has no payload to decode", j.ID, j.Type)
	}
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return fmt.Errorf("decoding the payload of job %s (%s): %w", j.ID, j.Type, err)
	}
	return nil
}

// Progress reports how far the job is: percent in [0, 100] and a short
// message (at most spool.MaxMessageLen bytes; longer is cut). The worker
// sends it with the next heartbeat, which comes early (at most once per
// WorkerOptions.ProgressInterval) so status readers see it soon. Safe to
// call from any goroutine; a Job not made by a Worker ignores it.
func (j *Job) Progress(percent float64, message string) {
	if j == nil || j.progressed == nil {
		return
	}
	switch {
	case math.IsNaN(percent) || percent < 0:
		percent = 0
	case percent > 100:
		percent = 100
	}
	j.mu.Lock()
	j.progress = &spool.ProgressUpdate{Percent: percent, Message: cutUTF8(message, spool.MaxMessageLen)}
	j.dirty = true
	j.mu.Unlock()
	select {
	case j.progressed <- struct{}{}:
	default:
	}
}

// pendingProgress returns the progress not yet sent, or nil.
func (j *Job) pendingProgress() *spool.ProgressUpdate {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.dirty {
		return nil
	}
	return j.progress
}

// sentProgress marks p as delivered, unless a newer one came meanwhile.
func (j *Job) sentProgress(p *spool.ProgressUpdate) {
	if p == nil {
		return
	}
	j.mu.Lock()
	if j.progress == p {
		j.dirty = false
	}
	j.mu.Unlock()
}

// Permanent marks err as final: the job goes dead at once, whatever
// attempts remain. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// RetryIn fails the attempt with err and asks for the retry to come after
// d, instead of the job's backoff (if attempts remain; d is clamped to [0,
// 30 days]). RetryIn(nil, d) is nil.
func RetryIn(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryInError{err: err, d: min(max(d, 0), spool.MaxBackoffDelay)}
}

type retryInError struct {
	err error
	d   time.Duration
}

func (e *retryInError) Error() string { return e.err.Error() }
func (e *retryInError) Unwrap() error { return e.err }

// panicError is a handler's panic, recovered.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v\n\n%s", e.value, e.stack) }

// cutUTF8 shortens s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
