package spool

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every layer wraps them with %w; the HTTP layer maps them to
// status codes and stable error codes through one table (see Code).
var (
	// ErrInvalid: the request is malformed or a value is out of range (400).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no job, queue or resource by that name or id (404).
	ErrNotFound = errors.New("not found")
	// ErrQueueFull: admitting the jobs would exceed the queue's max_depth (503).
	ErrQueueFull = errors.New("queue full")
	// ErrLeaseLost: the lease token is stale or wrong; the job moved on (409).
	ErrLeaseLost = errors.New("lease lost")
	// ErrConflict: the job is not in a state that allows the operation (409).
	ErrConflict = errors.New("conflict")
	// ErrDuplicate: an idempotency key already names another job (200 on
	// enqueue, returned internally to say the original job was returned).
	ErrDuplicate = errors.New("duplicate")
	// ErrTooLarge: a payload or request body exceeds its limit (413).
	ErrTooLarge = errors.New("too large")
	// ErrUnavailable: the server or its store cannot serve right now (503).
	ErrUnavailable = errors.New("unavailable")
	// ErrUnauthorized: missing credentials (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: credentials do not allow the operation (403).
	ErrForbidden = errors.New("forbidden")
	// ErrNoSubscribers: a message was published to a topic that no queue
	// takes it from (404, code no_subscribers); nothing was stored. It
	// also matches ErrNotFound.
	ErrNoSubscribers = errors.New("no subscribers")
	// ErrDiskFull: the server's disk is below its free-space mark, or full;
	// enqueues and publishes are refused until space is freed (503, code
	// disk_full, with Retry-After), while reads, leases, acks, cancels and
	// purges go on.
	ErrDiskFull = errors.New("disk full")
	// ErrOverBudget: admitting the work would exceed the server-wide
	// budget (the number of queues, or of jobs not yet finished across all
	// queues, or their payload bytes); nothing was stored. The error is a *BudgetError, whose Code
	// says which part.
	ErrOverBudget = errors.New("over budget")
)

// BudgetError says which part of the server-wide budget refused new work.
// It wraps ErrOverBudget.
type BudgetError struct {
	// Code is CodeTooManyQueues, CodeServerFull or CodeStorageFull.
	Code string
	// Used is what the server holds, Limit its cap, Adding what the
	// request would have added.
	Used, Limit, Adding int64
	// RetryAfter is in seconds; 0 when waiting does not help.
	RetryAfter int
}

func (e *BudgetError) Error() string {
	switch e.Code {
	case CodeTooManyQueues:
		return fmt.Sprintf("the server holds its maximum of %d queues: a new queue cannot be created; nothing was stored (use an existing queue, delete unused ones, or raise the server's --max-queues)", e.Limit)
	case CodeStorageFull:
		return fmt.Sprintf("the jobs not yet finished across all queues hold %d payload bytes, and the server's budget is %d: these %d bytes were refused and nothing was stored; retry once workers have finished some",
			e.Used, e.Limit, e.Adding)
	}
	return fmt.Sprintf("the server holds %d jobs not yet finished across all queues, and its budget is %d: these %d jobs were refused and nothing was stored; retry once workers have finished some",
		e.Used, e.Limit, e.Adding)
}

// Unwrap makes errors.Is(err, ErrOverBudget) true.
func (e *BudgetError) Unwrap() error { return ErrOverBudget }

// QueueFullError says which queue refused jobs and for how long the caller
// should wait before retrying. It wraps ErrQueueFull.
type QueueFullError struct {
	Queue      string
	Depth      int64
	MaxDepth   int64
	RetryAfter int // seconds; 0 if unknown
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("queue %q is full: %d of %d jobs not yet finished", e.Queue, e.Depth, e.MaxDepth)
}

// Unwrap makes errors.Is(err, ErrQueueFull) true.
func (e *QueueFullError) Unwrap() error { return ErrQueueFull }

// DiskFullError says the server refused new work because its disk is below
// the free-space mark. It wraps ErrDiskFull.
type DiskFullError struct {
	Free       uint64 // bytes free on the data directory's volume
	Mark       uint64 // the low-water mark, in bytes
	RetryAfter int    // seconds
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("the server's disk is nearly full (%s free, below the mark of %s): enqueues and publishes are refused until space is freed; reads, leases and acks still work",
		mib(e.Free), mib(e.Mark))
}

// Unwrap makes errors.Is(err, ErrDiskFull) true.
func (e *DiskFullError) Unwrap() error { return ErrDiskFull }

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Invalidf returns an error wrapping ErrInvalid with a message a person can act on.
func Invalidf(format string, args ...any) error {
	return &messageError{msg: fmt.Sprintf(format, args...), err: ErrInvalid}
}

// NotFoundf returns an error wrapping ErrNotFound.
func NotFoundf(format string, args ...any) error {
	return &messageError{msg: fmt.Sprintf(format, args...), err: ErrNotFound}
}

// Conflictf returns an error wrapping ErrConflict.
func Conflictf(format string, args ...any) error {
	return &messageError{msg: fmt.Sprintf(format, args...), err: ErrConflict}
}

// LeaseLostf returns an error wrapping ErrLeaseLost.
func LeaseLostf(format string, args ...any) error {
	return &messageError{msg: fmt.Sprintf(format, args...), err: ErrLeaseLost}
}

// TooLargef returns an error wrapping ErrTooLarge.
func TooLargef(format string, args ...any) error {
	return &messageError{msg: fmt.Sprintf(format, args...), err: ErrTooLarge}
}

// NoSubscribersf returns an error wrapping ErrNoSubscribers and ErrNotFound.
func NoSubscribersf(format string, args ...any) error {
	return &messageError{msg: fmt.Sprintf(format, args...), err: noSubscribers}
}

// noSubscribers makes errors.Is match both ErrNoSubscribers and ErrNotFound.
var noSubscribers = errors.Join(ErrNoSubscribers, ErrNotFound)

// messageError carries a human message whose text is safe to show clients,
// and a sentinel for errors.Is.
type messageError struct {
	msg string
	err error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.err }

// Error codes of the JSON error shape {"error":{"code":...,"message":...}}.
const (
	CodeInvalid          = "invalid_request"
	CodeNotFound         = "not_found"
	CodeNoSubscribers    = "no_subscribers"
	CodeQueueFull        = "queue_full"
	CodeLeaseLost        = "lease_lost"
	CodeConflict         = "conflict"
	CodeTooLarge         = "too_large"
	CodeUnavailable      = "unavailable"
	CodeDiskFull         = "disk_full"
	CodeTooManyQueues    = "too_many_queues"
	CodeServerFull       = "server_full"
	CodeStorageFull      = "storage_full"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeInternal         = "internal"
	// CodeServerBusy (503, with Retry-After): the server holds as many
	// request bodies as its memory budget allows; retry shortly.
	CodeServerBusy = "server_busy"
	// CodeRequestTimeout (408): the request body did not arrive in time.
	CodeRequestTimeout = "request_timeout"
	// CodeTooManyAttempts (429, with Retry-After): the client's address
	// failed to authenticate too often; wait, then use a valid key.
	CodeTooManyAttempts = "too_many_attempts"
	// CodeTooManyWaits (429, with Retry-After): the key (or, without
	// keys, the client address) holds as many long-polls and event
	// streams as it may.
	CodeTooManyWaits = "too_many_waits"
	// CodeUnsupportedMediaType (415): a request body that is not JSON
	// (Content-Type must be application/json).
	CodeUnsupportedMediaType = "unsupported_media_type"
)

// Code returns the stable error code for err, CodeInternal if err wraps none
// of the sentinels.
func Code(err error) string {
	var be *BudgetError
	if errors.As(err, &be) {
		return be.Code
	}
	switch {
	case errors.Is(err, ErrInvalid):
		return CodeInvalid
	case errors.Is(err, ErrNoSubscribers):
		return CodeNoSubscribers
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrQueueFull):
		return CodeQueueFull
	case errors.Is(err, ErrLeaseLost):
		return CodeLeaseLost
	case errors.Is(err, ErrConflict):
		return CodeConflict
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrDiskFull): // before ErrUnavailable: a full disk may wrap both
		return CodeDiskFull
	case errors.Is(err, ErrUnavailable):
		return CodeUnavailable
	case errors.Is(err, ErrUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, ErrForbidden):
		return CodeForbidden
	}
	return CodeInternal
}

// ErrorBody is the JSON error shape of every 4xx and 5xx answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
