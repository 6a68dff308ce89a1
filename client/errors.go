package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spoolq/spool"
)

// Error is an error answer of the server: a 4xx or 5xx status with the JSON
// error shape {"error":{"code":...,"message":...}}. It unwraps to the spool
// sentinel that matches its code (or, for answers without the shape, its
// status), so errors.Is(err, spool.ErrQueueFull) works.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the stable error code, e.g. spool.CodeQueueFull; empty when
	// the answer did not carry the error shape (a proxy's 502, say).
	Code string
	// Message is the server's explanation, meant for people.
	Message string
	// RetryAfter is the server's Retry-After hint; zero when absent.
	RetryAfter time.Duration
}

// Error returns the server's message, with the retry hint when there is one.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Unwrap returns the spool sentinel for the error's code, or for its status
// when the code is unknown.
func (e *Error) Unwrap() error {
	switch e.Code {
	case spool.CodeInvalid, spool.CodeMethodNotAllowed:
		return spool.ErrInvalid
	case spool.CodeNotFound:
		return spool.ErrNotFound
	case spool.CodeNoSubscribers:
		return spool.ErrNoSubscribers
	case spool.CodeQueueFull:
		return spool.ErrQueueFull
	case spool.CodeLeaseLost:
		return spool.ErrLeaseLost
	case spool.CodeConflict:
		return spool.ErrConflict
	case spool.CodeTooLarge:
		return spool.ErrTooLarge
	case spool.CodeDiskFull:
		return spool.ErrDiskFull
	case spool.CodeServerFull, spool.CodeStorageFull, spool.CodeTooManyQueues:
		return spool.ErrOverBudget
	case spool.CodeUnavailable:
		return spool.ErrUnavailable
	case spool.CodeUnauthorized:
		return spool.ErrUnauthorized
	case spool.CodeForbidden:
		return spool.ErrForbidden
	case spool.CodeInternal:
		return nil
	}
	switch e.Status {
	case http.StatusBadRequest:
		return spool.ErrInvalid
	case http.StatusNotFound:
		return spool.ErrNotFound
	case http.StatusConflict:
		return spool.ErrConflict
	case http.StatusRequestEntityTooLarge:
		return spool.ErrTooLarge
	case http.StatusUnauthorized:
		return spool.ErrUnauthorized
	case http.StatusForbidden:
		return spool.ErrForbidden
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return spool.ErrUnavailable
	}
	return nil
}

// Temporary reports whether the same request may succeed later: the queue
// was full, the server was unavailable or asked to slow down.
func (e *Error) Temporary() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// decodeError builds an *Error from an error answer's status, headers and
// (at most maxErrorBody bytes of) body.
func decodeError(status int, h http.Header, body []byte) *Error {
	e := &Error{Status: status, RetryAfter: parseRetryAfter(h.Get("Retry-After"))}
	var eb spool.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		e.Code = eb.Error.Code
		e.Message = eb.Error.Message
		return e
	}
	// Not our shape: keep a short, printable excerpt of what came back.
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	if text != "" {
		e.Message = fmt.Sprintf("server answered %d %s: %s", status, http.StatusText(status), text)
	}
	return e
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		if secs > 24*3600 {
			secs = 24 * 3600
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}
