package server

import (
	"context"
	"errors"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/spoolq/spool"
)

// statusOf maps each stable error code to its HTTP status. It is the one
// table from errors to statuses; spool.Code maps errors to codes.
var statusOf = map[string]int{
	spool.CodeInvalid:              http.StatusBadRequest,
	spool.CodeNotFound:             http.StatusNotFound,
	spool.CodeNoSubscribers:        http.StatusNotFound,
	spool.CodeQueueFull:            http.StatusServiceUnavailable,
	spool.CodeLeaseLost:            http.StatusConflict,
	spool.CodeConflict:             http.StatusConflict,
	spool.CodeTooLarge:             http.StatusRequestEntityTooLarge,
	spool.CodeUnavailable:          http.StatusServiceUnavailable,
	spool.CodeDiskFull:             http.StatusServiceUnavailable,
	spool.CodeServerFull:           http.StatusServiceUnavailable,
	spool.CodeStorageFull:          http.StatusServiceUnavailable,
	spool.CodeTooManyQueues:        http.StatusInsufficientStorage,
	spool.CodeUnauthorized:         http.StatusUnauthorized,
	spool.CodeForbidden:            http.StatusForbidden,
	spool.CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	spool.CodeInternal:             http.StatusInternalServerError,
	spool.CodeServerBusy:           http.StatusServiceUnavailable,
	spool.CodeRequestTimeout:       http.StatusRequestTimeout,
	spool.CodeTooManyWaits:         http.StatusTooManyRequests,
	spool.CodeTooManyAttempts:      http.StatusTooManyRequests,
	spool.CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
}

// Messages sent in place of causes that must stay in the logs.
const (
	msgInternal    = "internal error"
	msgUnavailable = "the server cannot serve this request right now; retry later"
	msgCancelled   = "the request was cancelled or ran out of time before it completed; retry it"
	msgDiskFull    = "the server's disk is full and its store stopped writing; the server restarts to recover once space is freed; retry later"
)

// retryAfterDiskFull is the Retry-After of a store that failed on a full
// disk (seconds).
const retryAfterDiskFull = 10

// retryAfter is the Retry-After of an error answer in seconds, 0 for none.
func retryAfter(err error) int {
	var qf *spool.QueueFullError
	var df *spool.DiskFullError
	var be *spool.BudgetError
	switch {
	case errors.As(err, &be):
		return be.RetryAfter
	case errors.As(err, &qf):
		return max(qf.RetryAfter, 1)
	case errors.As(err, &df):
		return max(df.RetryAfter, 1)
	case errors.Is(err, spool.ErrDiskFull):
		return retryAfterDiskFull
	}
	return 0
}

// apiError is an error the HTTP layer itself answers (unknown path, wrong
// method, not ready), with its status and code decided here.
type apiError struct {
	status int
	code   string
	msg    string
	// retryAfter, when positive, is sent as Retry-After (seconds).
	retryAfter int
}

func (e *apiError) Error() string { return e.msg }

// writeError answers err with the JSON error shape. Only messages of
// client errors are sent; internal causes are logged.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := spool.Code(err), err.Error()
	status := statusOf[code]
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		code, msg, status = ae.code, ae.msg, ae.status
		if ae.retryAfter > 0 {
			retryAfterHeader(w, ae.retryAfter)
		}
	case code == spool.CodeInternal && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		code, msg, status = spool.CodeUnavailable, msgCancelled, http.StatusServiceUnavailable
		s.log.Warn("request ended before its work", "method", r.Method, "path", r.URL.Path, "error", err)
	case code == spool.CodeInternal:
		msg = msgInternal
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	case code == spool.CodeUnavailable:
		msg = msgUnavailable
		s.log.Warn("request refused: unavailable", "method", r.Method, "path", r.URL.Path, "error", err)
	case code == spool.CodeDiskFull && !errors.As(err, new(*spool.DiskFullError)):
		// The store itself failed on a full disk; the cause stays in the
		// log (once, from the store).
		msg = msgDiskFull
	}
	if secs := retryAfter(err); secs > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if code == spool.CodeServerBusy {
		w.Header().Set("Retry-After", strconv.Itoa(busyRetryAfter))
	}
	s.writeJSON(w, status, spool.ErrorBody{Error: spool.ErrorDetail{Code: code, Message: msg}})
}

// recovered turns a handler's panic into a 500 answer (if none was
// started) and a log entry with the stack; the server keeps serving.
func (s *Server) recovered(w *respWriter, r *http.Request, v any) {
	if v == http.ErrAbortHandler {
		panic(v) // net/http's way to abort a response: let it through
	}
	s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
	if w.started() {
		return
	}
	s.writeJSON(w, http.StatusInternalServerError, spool.ErrorBody{Error: spool.ErrorDetail{Code: spool.CodeInternal, Message: msgInternal}})
}
