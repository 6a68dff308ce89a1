package spool

import (
	"encoding/json"
	"time"
)

// EnqueueRequest is the body of POST /v1/queues/{queue}/jobs and one element
// of a batch.
type EnqueueRequest struct {
	Type     string          `json:"type"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	Priority int             `json:"priority,omitempty"`
	// Delay and RunAt are exclusive: a job runs after Delay, or at RunAt.
	Delay          *Duration  `json:"delay,omitempty"`
	RunAt          *time.Time `json:"run_at,omitempty"`
	MaxAttempts    int        `json:"max_attempts,omitempty"`
	Timeout        *Duration  `json:"timeout,omitempty"`
	Backoff        *Backoff   `json:"backoff,omitempty"`
	IdempotencyKey string     `json:"idempotency_key,omitempty"`
	OrderingKey    string     `json:"ordering_key,omitempty"`
	// DependsOn names the jobs this one waits for: job ids, or the Ref of
	// another job of the same batch. The job stays waiting until every one
	// of them has succeeded, and is cancelled if one ends dead or
	// cancelled.
	DependsOn []string `json:"depends_on,omitempty"`
	// Ref is a name, chosen by the client, that other jobs of the same
	// batch use in DependsOn before the server has given this one an id.
	Ref  string   `json:"ref,omitempty"`
	Tags []string `json:"tags,omitempty"`
	// CallbackURL, an absolute http(s) URL, receives a signed POST of the
	// job when it reaches a terminal state (the server must have a
	// webhook secret configured).
	CallbackURL string `json:"callback_url,omitempty"`
}

// BatchEnqueueRequest is the body of POST /v1/queues/{queue}/jobs:batch.
type BatchEnqueueRequest struct {
	Jobs []EnqueueRequest `json:"jobs"`
}

// JobsResponse lists jobs: the answer to a batch enqueue and to a lease.
type JobsResponse struct {
	Jobs []*Job `json:"jobs"`
	// Existing, in the answer to a batch enqueue, lists the indices (in
	// request order) of the jobs whose idempotency key matched a job
	// enqueued earlier, which is returned instead of a new one.
	Existing []int `json:"existing,omitempty"`
}

// JobIDsResponse is the answer to a batch enqueue sent with the header
// "Prefer: return=minimal" (RFC 7240): the jobs' ids only, for producers
// that do not need the stored jobs echoed back.
type JobIDsResponse struct {
	// IDs lists the jobs' ids in request order. An element whose
	// idempotency key matched a job enqueued earlier has that job's id.
	IDs []string `json:"ids"`
	// Existing lists the indices of those elements, as in JobsResponse.
	Existing []int `json:"existing,omitempty"`
}

// JobList is one page of GET /v1/queues/{queue}/jobs.
type JobList struct {
	Jobs       []*Job `json:"jobs"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// JobFilter selects jobs of a queue: those in State (any state if empty),
// of Type, carrying Tag and of OrderingKey, for each field that is set.
// PayloadField, when set, keeps only the jobs whose payload is a JSON
// object with this top-level field equal, as JSON, to PayloadValue (JSON
// text such as 42 or "acme"; numbers compare by value, objects by their
// members).
type JobFilter struct {
	State        State  `json:"state,omitempty"`
	Type         string `json:"type,omitempty"`
	Tag          string `json:"tag,omitempty"`
	OrderingKey  string `json:"ordering_key,omitempty"`
	PayloadField string `json:"payload_field,omitempty"`
	PayloadValue string `json:"payload_value,omitempty"`
}

// BulkRequest is the body of POST /v1/queues/{queue}/jobs:retry,
// jobs:cancel and jobs:delete: the action applies to every job of the
// queue that passes the filter and that the action applies to (retry:
// dead and cancelled jobs; cancel: jobs not started, or active ones when
// State is active; delete: every job not active).
type BulkRequest struct {
	State       State  `json:"state,omitempty"`
	Type        string `json:"type,omitempty"`
	Tag         string `json:"tag,omitempty"`
	OrderingKey string `json:"ordering_key,omitempty"`
	// PayloadField and PayloadValue keep only the jobs whose payload has
	// this top-level field equal to this JSON value, as in JobFilter.
	PayloadField string `json:"payload_field,omitempty"`
	PayloadValue string `json:"payload_value,omitempty"`
	// DryRun counts the jobs the action would apply to now and changes
	// nothing, so that a person can confirm first.
	DryRun bool `json:"dry_run,omitempty"`
}

// Filter returns the request's filter.
func (r *BulkRequest) Filter() JobFilter {
	return JobFilter{State: r.State, Type: r.Type, Tag: r.Tag, OrderingKey: r.OrderingKey,
		PayloadField: r.PayloadField, PayloadValue: r.PayloadValue}
}

// Validate checks the request's filter.
func (r *BulkRequest) Validate() error {
	f := r.Filter()
	return f.Validate()
}

// BulkResponse answers a bulk action and DELETE /v1/queues/{queue}: how
// many jobs it changed (or, with DryRun, would change).
type BulkResponse struct {
	Count  int64 `json:"count"`
	DryRun bool  `json:"dry_run,omitempty"`
}

// LeaseRequest is the body of POST /v1/leases.
type LeaseRequest struct {
	// Queues to take from, in priority order: the first is emptied first.
	Queues []string `json:"queues"`
	// Max jobs to lease (default 1).
	Max int `json:"max,omitempty"`
	// Wait long-polls up to this long when nothing is ready (default 0).
	Wait *Duration `json:"wait,omitempty"`
	// Lease is how long the claim lasts before heartbeats must extend it.
	Lease *Duration `json:"lease,omitempty"`
	// Worker names the caller (host, pid, ...), shown on the active job.
	Worker string `json:"worker,omitempty"`
}

// HeartbeatRequest is the body of POST /v1/jobs/{id}/heartbeat.
type HeartbeatRequest struct {
	Token    string          `json:"token"`
	Extend   *Duration       `json:"extend,omitempty"`
	Progress *ProgressUpdate `json:"progress,omitempty"`
}

// ProgressUpdate is a worker's report on a running job.
type ProgressUpdate struct {
	Percent float64 `json:"percent"`
	Message string  `json:"message,omitempty"`
}

// HeartbeatResponse answers a heartbeat.
type HeartbeatResponse struct {
	State State `json:"state"`
	// LeaseExpiresAt is the new expiry; absent once the job left active.
	LeaseExpiresAt  *time.Time `json:"lease_expires_at,omitempty"`
	CancelRequested bool       `json:"cancel_requested"`
}

// CompleteRequest is the body of POST /v1/jobs/{id}/complete.
type CompleteRequest struct {
	Token  string          `json:"token"`
	Result json.RawMessage `json:"result,omitempty"`
}

// FailRequest is the body of POST /v1/jobs/{id}/fail.
type FailRequest struct {
	Token string `json:"token"`
	Error string `json:"error"`
	// RetryIn overrides the backoff for this retry.
	RetryIn *Duration `json:"retry_in,omitempty"`
	// Final sends the job to dead at once, whatever attempts remain.
	Final bool `json:"final,omitempty"`
}

// ReleaseRequest is the body of POST /v1/jobs/{id}/release: a worker hands
// an active job back without finishing it (it is shutting down, or the job
// is meant for another pool). The job is ready again at once and the
// attempt does not count.
type ReleaseRequest struct {
	Token string `json:"token"`
}

// Ack outcomes for POST /v1/acks.
const (
	OutcomeComplete = "complete"
	OutcomeFail     = "fail"
	// OutcomeRelease hands the job back as POST /v1/jobs/{id}/release does.
	OutcomeRelease = "release"
)

// Ack is one element of POST /v1/acks.
type Ack struct {
	ID      string          `json:"id"`
	Token   string          `json:"token"`
	Outcome string          `json:"outcome"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   string          `json:"error,omitempty"`
	RetryIn *Duration       `json:"retry_in,omitempty"`
	Final   bool            `json:"final,omitempty"`
}

// AcksRequest is the body of POST /v1/acks.
type AcksRequest struct {
	Acks []Ack `json:"acks"`
}

// AckResult is the outcome of one Ack, in request order. Each ack stands
// alone: one stale token does not undo the others.
type AckResult struct {
	ID    string       `json:"id"`
	State State        `json:"state,omitempty"`
	Error *ErrorDetail `json:"error,omitempty"`
}

// AcksResponse answers POST /v1/acks.
type AcksResponse struct {
	Results []AckResult `json:"results"`
}

// QueueConfig holds a queue's settings. In a PATCH, only the fields present
// change; in answers every field is filled with the value in force.
type QueueConfig struct {
	MaxDepth    *int64    `json:"max_depth,omitempty"`
	Retention   *Duration `json:"retention,omitempty"`
	Paused      *bool     `json:"paused,omitempty"`
	MaxAttempts *int      `json:"max_attempts,omitempty"`
	Backoff     *Backoff  `json:"backoff,omitempty"`
	// Concurrency caps the queue's active jobs, across every worker and
	// node (0: no cap).
	Concurrency *int `json:"concurrency,omitempty"`
	// Rate caps how many of the queue's jobs start per second, across
	// every worker and node (0: no cap); Burst is how many may start at
	// once after a quiet spell (0: the rate rounded up, at least 1).
	Rate  *float64 `json:"rate,omitempty"`
	Burst *int     `json:"burst,omitempty"`
	// TargetWait is how long a job should wait for a worker at most, on
	// average; the queue's stats then say how many workers that needs
	// (workers_needed). 0 (the default) sets no target.
	TargetWait *Duration `json:"target_wait,omitempty"`
	// DeadLetterQueue names the queue that takes this queue's jobs that
	// go dead (attempts spent or failed as final): each is copied there as
	// a new ready job, in the same atomic write that makes it dead here.
	// "" in a PATCH removes the setting.
	DeadLetterQueue *string `json:"dead_letter_queue,omitempty"`
	// Attributes are settings that Spool keeps for other protocols and
	// does not read itself (the SQS API keeps its queue attributes and
	// tags here). In a PATCH each key present is set, and a key whose
	// value is "" is removed.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// QueueInfo describes a queue: GET /v1/queues and /v1/queues/{queue}.
type QueueInfo struct {
	Name   string          `json:"name"`
	Config QueueConfig     `json:"config"`
	Counts map[State]int64 `json:"counts"`
	// Depth counts jobs not yet terminal; admission compares it to MaxDepth.
	Depth int64 `json:"depth"`
	// OldestReadyAge is how long the oldest ready job has waited.
	OldestReadyAge Duration `json:"oldest_ready_age"`
	// Rates are per second over the last minute, cluster-wide (every node
	// that shares the store reports the same figures): jobs enqueued, jobs
	// finished (any terminal state) and attempts that failed.
	EnqueueRate  float64 `json:"enqueue_rate"`
	CompleteRate float64 `json:"complete_rate"`
	FailRate     float64 `json:"fail_rate"`
	// WaitP99 is the 99th percentile of the time jobs waited for a worker
	// (ready to started) over the last minute; 0 when none started.
	WaitP99 Duration `json:"wait_p99"`
	// Busy is the number of active jobs (leases held) now.
	Busy int64 `json:"busy"`
}

// QueuesResponse answers GET /v1/queues.
type QueuesResponse struct {
	Queues []QueueInfo `json:"queues"`
	// Budget is what the server holds against its server-wide budget.
	Budget *BudgetInfo `json:"budget,omitempty"`
}

// BudgetInfo is the server-wide budget: the number of queues, the jobs not
// yet finished across all queues and their payload bytes (cluster-wide on
// PostgreSQL).
type BudgetInfo struct {
	Queues       BudgetUse `json:"queues"`
	Jobs         BudgetUse `json:"jobs"`
	PayloadBytes BudgetUse `json:"payload_bytes"`
}

// BudgetUse is one part of the budget: what is used, and the cap (0: none).
type BudgetUse struct {
	Used  int64 `json:"used"`
	Limit int64 `json:"limit"`
}
