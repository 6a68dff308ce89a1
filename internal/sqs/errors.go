package sqs

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/spoolq/spool"
)

// apiError is an error as SQS answers it: the short error type of the JSON
// protocol (its __type is "com.amazonaws.sqs#" + Type), the code of the
// query protocol (also sent in the JSON protocol's x-amzn-query-error
// header, which the AWS SDKs read), the HTTP status and who is at fault.
type apiError struct {
	Status int
	Type   string
	Code   string
	Sender bool
	Msg    string
	// RetryAfter, in seconds, is sent as Retry-After when set.
	RetryAfter int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Msg }

func newError(status int, typ, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Type: typ, Code: code, Sender: status < 500, Msg: fmt.Sprintf(format, args...)}
}

func invalidParameter(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidParameterValue", "InvalidParameterValue", format, args...)
}

func missingParameter(name string) *apiError {
	return newError(http.StatusBadRequest, "MissingParameter", "MissingParameter", "The request must contain the parameter %s.", name)
}

func queueDoesNotExist() *apiError {
	return newError(http.StatusBadRequest, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
}

func invalidReceiptHandle(handle string) *apiError {
	return newError(http.StatusBadRequest, "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", "The input receipt handle %q is not a valid receipt handle.", clip(handle, 100))
}

func invalidAttributeName(name string) *apiError {
	return newError(http.StatusBadRequest, "InvalidAttributeName", "InvalidAttributeName", "Unknown Attribute %s.", clip(name, 100))
}

func invalidAttributeValue(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidAttributeValue", "InvalidAttributeValue", format, args...)
}

func unknownAction(action string, jsonProtocol bool) *apiError {
	if jsonProtocol {
		return newError(http.StatusBadRequest, "UnknownOperationException", "InvalidAction", "The action %s is not valid for this endpoint.", clip(action, 100))
	}
	return newError(http.StatusBadRequest, "InvalidAction", "InvalidAction", "The action %s is not valid for this endpoint.", clip(action, 100))
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// fromEngine maps an error of the engine to the SQS error a client gets.
// Internal causes are not sent.
func fromEngine(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var qf *spool.QueueFullError
	switch {
	case errors.As(err, &qf):
		// RequestThrottled is an SQS error that the AWS SDKs' standard
		// retry mode counts as throttling, and 503 is retried by every
		// client: producers back off by themselves.
		e := newError(http.StatusServiceUnavailable, "RequestThrottled", "RequestThrottled",
			"Queue is full (%d of %d messages not yet deleted); retry after %d s.", qf.Depth, qf.MaxDepth, qf.RetryAfter)
		e.Sender = true
		e.RetryAfter = qf.RetryAfter
		return e
	case errors.Is(err, spool.ErrDiskFull):
		e := newError(http.StatusServiceUnavailable, "ServiceUnavailable", "ServiceUnavailable", "The server's disk is nearly full: sends are refused until space is freed; retry later.")
		var df *spool.DiskFullError
		if errors.As(err, &df) {
			e.RetryAfter = df.RetryAfter
		}
		return e
	case errors.Is(err, spool.ErrOverBudget):
		var be *spool.BudgetError
		if errors.As(err, &be) && be.Code == spool.CodeTooManyQueues {
			return newError(http.StatusForbidden, "OverLimit", "OverLimit", "The server holds its maximum of %d queues: a new queue cannot be created.", be.Limit)
		}
		e := newError(http.StatusServiceUnavailable, "RequestThrottled", "RequestThrottled", "The server holds its budget of messages not yet deleted; retry later.")
		e.Sender = true
		if be != nil {
			e.RetryAfter = be.RetryAfter
		}
		return e
	case errors.Is(err, spool.ErrTooLarge):
		return invalidParameter("%s", err.Error())
	case errors.Is(err, spool.ErrInvalid):
		return invalidParameter("%s", err.Error())
	case errors.Is(err, spool.ErrUnavailable):
		return newError(http.StatusServiceUnavailable, "ServiceUnavailable", "ServiceUnavailable", "The service is unavailable; retry.")
	case errors.Is(err, spool.ErrUnauthorized):
		return newError(http.StatusForbidden, "InvalidClientTokenId", "InvalidClientTokenId", "The security token included in the request is invalid.")
	case errors.Is(err, spool.ErrForbidden):
		return newError(http.StatusForbidden, "AccessDenied", "AccessDenied", "Access to the resource is denied.")
	}
	return newError(http.StatusInternalServerError, "InternalError", "InternalError", "We encountered an internal error. Please try again.")
}
