// Package store defines the storage seam of Spool: atomic operations on jobs
// and queues, and nothing else. Queue rules (retry policy, state machine,
// admission limits, timing) live in package engine, which decides; a Store
// applies what it is told atomically. No backend type crosses this seam and
// every backend returns the sentinels of package spool.
//
// Backends: embedded (Pebble) and, later, postgres. The storetest package is
// the conformance suite both must pass.
package store

import (
	"context"
	"time"

	"github.com/spoolq/spool"
)

// Record is a job as stored: the API view plus what only the store and the
// engine may see.
type Record struct {
	spool.Job
	// Token is the current lease token; empty unless the job is active.
	Token string
	// Rev changes on every write of the record; Update compares it.
	Rev uint64
}

// Clone returns a deep copy, so callers never share slices with the store.
func (r *Record) Clone() *Record {
	if r == nil {
		return nil
	}
	c := *r
	c.Job = CloneJob(&r.Job)
	return &c
}

// CloneJob deep-copies a job.
func CloneJob(j *spool.Job) spool.Job {
	c := *j
	c.Payload = append([]byte(nil), j.Payload...)
	c.Result = append([]byte(nil), j.Result...)
	if j.Payload == nil {
		c.Payload = nil
	}
	if j.Result == nil {
		c.Result = nil
	}
	c.DependsOn = append([]string(nil), j.DependsOn...)
	c.Tags = append([]string(nil), j.Tags...)
	c.Errors = append([]spool.AttemptError(nil), j.Errors...)
	if j.Backoff != nil {
		b := *j.Backoff
		c.Backoff = &b
	}
	if j.Progress != nil {
		p := *j.Progress
		c.Progress = &p
	}
	c.LeaseExpiresAt = cloneTime(j.LeaseExpiresAt)
	c.ReadyAt = cloneTime(j.ReadyAt)
	c.StartedAt = cloneTime(j.StartedAt)
	c.FinishedAt = cloneTime(j.FinishedAt)
	if j.Lease != nil {
		l := *j.Lease
		c.Lease = &l
	}
	return c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

// InsertParams asks to store new jobs atomically: all or none.
type InsertParams struct {
	// Jobs are complete records (id, state waiting, scheduled or ready,
	// run_at, created_at, ...) built by the engine. Rev and Token are
	// ignored. An id that already exists fails the insert with
	// spool.ErrConflict. The store may return these very records, updated,
	// in InsertResult: the caller must not use them otherwise afterwards.
	Jobs []*Record
	// MaxDepth per queue named in Jobs: the insert fails with a
	// *spool.QueueFullError (and stores nothing) if, for any queue, the jobs
	// not yet terminal plus the new non-terminal ones (idempotent repeats
	// excluded) would exceed it. Queues absent from the map are unbounded.
	MaxDepth map[string]int64
}

// InsertResult is the outcome for one job of InsertParams.Jobs, in order.
type InsertResult struct {
	Record *Record
	// Existing is true when the job's (queue, idempotency_key) already named
	// a stored job (or an earlier job of the same insert); Record is then that
	// job and nothing new was stored for this element.
	Existing bool
}

// LeaseParams asks to claim ready jobs.
type LeaseParams struct {
	// Queues in priority order: all ready jobs of Queues[0] are taken before
	// any of Queues[1]. Within a queue: higher priority first, then FIFO by
	// insert order.
	Queues []string
	Max    int
	Worker string
	Now    time.Time
	// ExpiresAt is the lease expiry to set.
	ExpiresAt time.Time
	// NewToken returns a fresh random lease token for each leased job.
	NewToken func() string
	// Limits holds the flow-control limits of the queues of Queues that
	// have any (see QueueLimits); a queue absent from it is unlimited and
	// leased as if Limits were nil.
	Limits map[string]QueueLimits
	// Throttled, when set, is called for each queue of Limits whose rate
	// left it without a whole token by the end of the lease, with the time
	// the next token is due. It must return quickly and not call the
	// store.
	Throttled func(queue string, next time.Time)
}

// QueueLimits are the flow-control limits one queue gets in a lease. A
// Store enforces them atomically with the lease, across every node that
// shares it.
type QueueLimits struct {
	// MaxActive caps the queue's active jobs (0: no cap): a lease takes
	// at most MaxActive minus the jobs active now.
	MaxActive int
	// Rate is a token bucket's refill, in tokens per second (0: no rate
	// limit), and Burst its size (at least 1 when Rate is set). Each
	// leased job takes one token; a bucket first seen is full, and it
	// refills by Rate times the time elapsed since the last lease of the
	// queue (LeaseParams.Now; never backwards), up to Burst.
	Rate  float64
	Burst int
}

// Change is one compare-and-set write of Update.
type Change struct {
	// Record is the new content. Its ID names the job; Rev must equal the
	// stored Rev or the change fails with spool.ErrConflict. Payload is never
	// rewritten; Result is written when non-nil. ID, Queue, CreatedAt and
	// IdempotencyKey are fixed by the engine; Job.Lease is not stored. Two
	// changes of one job in one call apply in order (the second conflicts).
	Record *Record
	// Then are new jobs stored in the same atomic write as this change, if
	// and only if the change succeeds (a job's webhook delivery, written
	// with its terminal state). One whose (queue, idempotency key) is
	// already taken is skipped: the earlier job stands. No max_depth
	// applies to them.
	Then []*Record
	// NoBodies says the caller needs neither the payload nor the result
	// of the record returned for this change: it comes back with Payload
	// and Result nil, and the store does not read them (a batch of acks
	// only looks at states). What is stored is the same either way.
	NoBodies bool
}

// ListJobsParams asks for one page of a queue's jobs in id order.
type ListJobsParams struct {
	Queue string
	State spool.State // empty: every state
	// After is the cursor: the last id of the previous page ("" for the first).
	After string
	Limit int
	// Type, Tag and OrderingKey, when not empty, keep only the jobs of
	// this type, carrying this tag, or of this ordering key. With any of
	// them set, a backend may bound the jobs it examines in one call: a
	// page may then hold fewer than Limit jobs (even none) and still have
	// a next cursor.
	Type, Tag, OrderingKey string
	// PayloadField, when not empty, keeps only the jobs whose payload is a
	// JSON object with this top-level field equal (PayloadEquals) to the
	// JSON text PayloadValue; the same bound on the jobs examined applies.
	PayloadField, PayloadValue string
}

// Filtered reports whether p keeps only some jobs of its queue and state.
func (p *ListJobsParams) Filtered() bool {
	return p.Type != "" || p.Tag != "" || p.OrderingKey != "" || p.PayloadField != ""
}

// Matches reports whether r passes p's Type, Tag and OrderingKey: the one
// rule every backend applies.
func (p *ListJobsParams) Matches(r *spool.Job) bool {
	if p.Type != "" && r.Type != p.Type || p.OrderingKey != "" && r.OrderingKey != p.OrderingKey {
		return false
	}
	if p.PayloadField != "" && !PayloadEquals(r.Payload, p.PayloadField, []byte(p.PayloadValue)) {
		return false
	}
	if p.Tag == "" {
		return true
	}
	for _, t := range r.Tags {
		if t == p.Tag {
			return true
		}
	}
	return false
}

// DeleteParams names finished jobs to delete.
type DeleteParams struct {
	// Jobs to delete, each with the Rev it was read at.
	Jobs []JobRev
}

// JobRev names one version of a job.
type JobRev struct {
	ID  string
	Rev uint64
}

// QueueRecord is what the store knows of a queue.
type QueueRecord struct {
	Name string
	// Config holds only the settings changed by PATCH; nil fields take the
	// engine's defaults.
	Config spool.QueueConfig
	Counts map[spool.State]int64
	// OldestReady is the ready_at of the job that has been ready longest
	// (zero if none is ready).
	OldestReady time.Time
}

// Store is the storage seam. All methods are safe for concurrent use, and
// every write is durable (synced) before the method returns. Limits (Max,
// limit, Limit) must be positive, else spool.ErrInvalid. After Close every
// method returns an error wrapping spool.ErrUnavailable.
type Store interface {
	// Insert stores new jobs (see InsertParams).
	Insert(ctx context.Context, p InsertParams) ([]InsertResult, error)
	// Get returns a job with payload and result, or spool.ErrNotFound.
	Get(ctx context.Context, id string) (*Record, error)
	// Lease claims up to p.Max ready jobs with run_at <= p.Now: each becomes
	// active with a new token, attempt+1, worker, started_at and lease
	// expiry. The returned records include payloads. A job with an
	// ordering key is leased only while it is the oldest (by insert order)
	// job not yet terminal of its (queue, ordering key): jobs of one key
	// run one at a time, in insert order, and a job waiting for a retry
	// (scheduled) keeps its place. p.Limits are never exceeded.
	Lease(ctx context.Context, p LeaseParams) ([]*Record, error)
	// Update applies compare-and-set changes, each on its own: errs[i] is
	// nil, spool.ErrNotFound or spool.ErrConflict (stale Rev). All
	// successful changes are synced together. The returned records are the
	// stored results with payload and result (nil where errs[i] != nil).
	Update(ctx context.Context, changes []Change) (recs []*Record, errs []error, err error)
	// ListJobs returns a page of a queue's jobs in id order (without payload
	// and result) and the cursor of the next page ("" at the end: a full
	// page is never followed by an empty one).
	ListJobs(ctx context.Context, p ListJobsParams) ([]*Record, string, error)
	// PromoteDue makes up to limit scheduled jobs with run_at <= now ready
	// (ready_at = now) and returns the queues that received jobs.
	PromoteDue(ctx context.Context, now time.Time, limit int) ([]string, error)
	// ExpiredLeases returns up to limit active jobs whose lease expired at
	// or before now (with their tokens, without payloads), oldest expiry
	// first.
	ExpiredLeases(ctx context.Context, now time.Time, limit int) ([]*Record, error)
	// Purge deletes up to limit terminal jobs of queue finished strictly
	// before before, with their idempotency keys, and returns how many.
	Purge(ctx context.Context, queue string, before time.Time, limit int) (int, error)
	// Queue returns one queue, or spool.ErrNotFound if it was never used.
	Queue(ctx context.Context, name string) (*QueueRecord, error)
	// Queues lists every queue that was ever used, sorted by name.
	Queues(ctx context.Context) ([]*QueueRecord, error)
	// Usage counts what the store holds across every queue, for the
	// server-wide budget. It is read often (the engine caches it for a
	// second): keep it cheap.
	Usage(ctx context.Context) (Usage, error)
	// SetQueueConfig stores a queue's overrides, creating the queue.
	SetQueueConfig(ctx context.Context, name string, cfg spool.QueueConfig) error
	// Delete deletes finished jobs (succeeded, dead, cancelled) with their
	// payloads, results and idempotency keys, each on its own: errs[i] is
	// nil, spool.ErrNotFound, or spool.ErrConflict (its Rev is not the
	// stored one, or it is not finished). Successful deletes are synced
	// together.
	Delete(ctx context.Context, p DeleteParams) (errs []error, err error)
	// DeleteQueue forgets a queue that holds no job: its config and
	// counters. It returns spool.ErrNotFound for a queue never used and
	// spool.ErrConflict for one that holds jobs. A job written to the
	// queue afterwards creates it again, with the defaults.
	DeleteQueue(ctx context.Context, name string) error
	// Topics stores topic subscriptions.
	Topics
	// Dependencies finds jobs by their parents.
	Dependencies
	// Schedules stores cron schedules and fires them.
	Schedules
	// Keys stores API keys and the audit log.
	Keys
	// Telemetry stores per-queue statistics buckets.
	Telemetry
	// Close releases the store; pending writes are synced first.
	Close() error
}

// Subscription binds a queue to a topic: every message published to Topic
// (whose type passes Types) becomes a job in Queue.
type Subscription struct {
	Topic string
	Queue string
	// Types, when not empty, limits the subscription to messages of these
	// types.
	Types     []string
	CreatedAt time.Time
}

// SubscriptionsParams selects subscriptions.
type SubscriptionsParams struct {
	// Topic limits the answer to one topic ("" for every topic).
	Topic string
	// Type, when not empty, keeps only the subscriptions that take a
	// message of this type (those with no Types, or Types containing it).
	Type string
}

// Topics is the part of the seam that stores topic subscriptions.
type Topics interface {
	// PutSubscription creates or replaces the (Topic, Queue) subscription.
	PutSubscription(ctx context.Context, sub Subscription) error
	// DeleteSubscription removes a subscription, or returns
	// spool.ErrNotFound if there is none.
	DeleteSubscription(ctx context.Context, topic, queue string) error
	// Subscriptions lists subscriptions sorted by topic, then queue.
	Subscriptions(ctx context.Context, p SubscriptionsParams) ([]Subscription, error)
}

// SubscriptionMatches reports whether sub takes messages of type typ: the
// one rule every backend applies for SubscriptionsParams.Type.
func SubscriptionMatches(sub *Subscription, typ string) bool {
	if typ == "" || len(sub.Types) == 0 {
		return true
	}
	for _, t := range sub.Types {
		if t == typ {
			return true
		}
	}
	return false
}

// CheckRecord rejects a record no backend can store: nil, without id or
// queue, or in an unknown state (spool.ErrInvalid).
func CheckRecord(r *Record) error {
	switch {
	case r == nil:
		return spool.Invalidf("no record")
	case r.ID == "":
		return spool.Invalidf("no id")
	case r.Queue == "":
		return spool.Invalidf("job %q has no queue", r.ID)
	case !r.State.Valid():
		return spool.Invalidf("job %q has unknown state %q", r.ID, r.State)
	}
	return nil
}

// Failer is implemented by stores that can stop serving for good while the
// process lives on (the embedded store, after a write to its disk failed):
// Failed is closed then, and Err says why (nil while the store serves).
// The owner should stop and restart: a restart recovers from what is
// stored.
type Failer interface {
	Failed() <-chan struct{}
	Err() error
}

// Usage is what a store holds across every queue.
type Usage struct {
	// Queues is the number of queues (as Queues lists them).
	Queues int64
	// Unfinished is the number of jobs not yet finished (waiting,
	// scheduled, ready, active) across every queue.
	Unfinished int64
	// PayloadBytes is the payload bytes of those jobs.
	PayloadBytes int64
}
