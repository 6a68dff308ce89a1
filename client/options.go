package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spoolq/spool"
)

// EnqueueOption sets a field of an enqueue request (see Push and
// NewRequest).
type EnqueueOption func(*spool.EnqueueRequest)

// Delay runs the job after d rather than at once.
func Delay(d time.Duration) EnqueueOption {
	return func(r *spool.EnqueueRequest) {
		v := spool.Duration(d)
		r.Delay, r.RunAt = &v, nil
	}
}

// RunAt runs the job at t rather than at once.
func RunAt(t time.Time) EnqueueOption {
	return func(r *spool.EnqueueRequest) {
		r.RunAt, r.Delay = &t, nil
	}
}

// Priority orders ready jobs of a queue: higher runs first (range
// spool.MinPriority to spool.MaxPriority; default 0).
func Priority(p int) EnqueueOption {
	return func(r *spool.EnqueueRequest) { r.Priority = p }
}

// MaxAttempts is how many attempts the job gets before it goes dead
// (default: the queue's).
func MaxAttempts(n int) EnqueueOption {
	return func(r *spool.EnqueueRequest) { r.MaxAttempts = n }
}

// JobTimeout bounds one attempt: a Worker cancels the handler's context
// when it passes, and the server fails the attempt at the next heartbeat.
func JobTimeout(d time.Duration) EnqueueOption {
	return func(r *spool.EnqueueRequest) {
		v := spool.Duration(d)
		r.Timeout = &v
	}
}

// RetryBackoff sets the job's retry policy: the n-th retry waits about
// base*2^(n-1), at most max (zero: the queue's).
func RetryBackoff(base, max time.Duration) EnqueueOption {
	return func(r *spool.EnqueueRequest) {
		r.Backoff = &spool.Backoff{Base: spool.Duration(base), Max: spool.Duration(max)}
	}
}

// IdempotencyKey makes the enqueue idempotent: while a job enqueued with
// the same key into the same queue is kept (its queue's retention after it
// finished), enqueueing again returns that job rather than a new one.
func IdempotencyKey(key string) EnqueueOption {
	return func(r *spool.EnqueueRequest) { r.IdempotencyKey = key }
}

// Tags labels the job.
func Tags(tags ...string) EnqueueOption {
	return func(r *spool.EnqueueRequest) { r.Tags = append(r.Tags, tags...) }
}

// DependsOn makes the job wait for other jobs (their ids): it runs once
// every one of them has succeeded, and is cancelled if one ends dead or
// cancelled.
func DependsOn(ids ...string) EnqueueOption {
	return func(r *spool.EnqueueRequest) { r.DependsOn = append(r.DependsOn, ids...) }
}

// CallbackURL has the server POST the job, signed, to url when it reaches a
// terminal state (the server needs a webhook secret; check deliveries with
// VerifyWebhook).
func CallbackURL(url string) EnqueueOption {
	return func(r *spool.EnqueueRequest) { r.CallbackURL = url }
}

// NewRequest builds an enqueue request for a job of type typ, encoding its
// payload as Push does, for EnqueueBatch or Enqueue.
func NewRequest(typ string, payload any, opts ...EnqueueOption) (spool.EnqueueRequest, error) {
	if typ == "" {
		return spool.EnqueueRequest{}, errors.New("client: empty job type")
	}
	raw, err := encodeJSON(payload)
	if err != nil {
		return spool.EnqueueRequest{}, fmt.Errorf("client: the payload of a %q job: %w", typ, err)
	}
	req := spool.EnqueueRequest{Type: typ, Payload: raw}
	for _, o := range opts {
		o(&req)
	}
	return req, nil
}

// encodeJSON turns a payload or a result into JSON: raw JSON
// (json.RawMessage or []byte) is checked and kept as it is, nil is no value,
// anything else is marshalled.
func encodeJSON(v any) (json.RawMessage, error) {
	var raw []byte
	switch p := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	if len(raw) == 0 {
		return nil, nil
	}
	if !json.Valid(raw) {
		return nil, errors.New("raw JSON ([]byte or json.RawMessage) is not valid JSON")
	}
	return json.RawMessage(raw), nil
}
