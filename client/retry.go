package client

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/spoolq/spool"
)

// RetryPolicy says how a Client retries a call that failed for a reason
// that may pass: the server answered 429 or 503 (a full queue, a busy or
// stopping server), a proxy answered 502 or 504, the connection failed, or
// the attempt timed out. The n-th retry waits a random time in [0,
// min(Max, Base*2^(n-1))) ("full jitter"); a server's Retry-After is a
// hint: the wait is then at least the shorter of it and Max.
//
// Back pressure (429, and 503 queue_full or server_busy: the server stored
// nothing) is retried until the call's context ends, however long the
// server's Retry-After: a full queue whose workers come back is waited
// for. Give the context a deadline (or rely on the default timeout, see
// WithTimeout) to bound the wait; the error of the last try, with the
// server's RetryAfter, is returned when it ends. Other failures are
// retried at most MaxRetries times, and never into a wait that would end
// past the context's deadline.
//
// Only calls that are safe to repeat are retried after a failure that
// leaves unknown whether the server acted (a timeout, a broken connection,
// a 502/503/504): reads, queue config changes, heartbeats, and enqueues,
// which carry an idempotency key across their retries (see Enqueue). Calls
// that are not safe to repeat (Lease, Complete, Fail, Ack, Release, Cancel,
// Retry) are retried only when the server surely did not act: 429, 503
// queue_full or server_busy, or a connection that could not be opened.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first try of a
	// failure other than back pressure; 0 disables every retry.
	MaxRetries int
	// Base is the backoff before the first retry (at most; jitter draws
	// below it). Default 100ms.
	Base time.Duration
	// Max caps the wait before any retry, a server's Retry-After
	// included. Default 5s.
	Max time.Duration
	// FailWhenFull makes back pressure (a full queue, a busy server) fail
	// at once, with the server's Retry-After, instead of being retried
	// until the context ends: for tools a person waits on.
	FailWhenFull bool
}

// DefaultRetryPolicy is the policy of a Client created without
// WithRetryPolicy.
var DefaultRetryPolicy = RetryPolicy{MaxRetries: 6, Base: 100 * time.Millisecond, Max: 5 * time.Second}

// NoRetry is a policy that never retries.
var NoRetry = RetryPolicy{}

// WithRetryPolicy sets how the Client retries failed calls (default
// DefaultRetryPolicy; NoRetry turns retries off). Zero Base and Max take
// the defaults.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *Client) error {
		if p.MaxRetries < 0 || p.Base < 0 || p.Max < 0 {
			return errors.New("client: WithRetryPolicy: MaxRetries, Base and Max must not be negative")
		}
		if p.Base == 0 {
			p.Base = DefaultRetryPolicy.Base
		}
		if p.Max == 0 {
			p.Max = DefaultRetryPolicy.Max
		}
		if p.Base > p.Max {
			return errors.New("client: WithRetryPolicy: Base must not exceed Max")
		}
		c.retry = p
		return nil
	}
}

// repeat says which failures of a call may be retried.
type repeat int

const (
	// repeatIfUnsent retries only failures that prove the server did not
	// act on the request.
	repeatIfUnsent repeat = iota
	// repeatSafe retries every temporary failure: sending the request
	// twice does no harm.
	repeatSafe
)

// retryable reports whether err, the failure of one try of a call, may be
// retried.
func retryable(mode repeat, err error) bool {
	var ce *Error
	if errors.As(err, &ce) {
		switch ce.Status {
		case http.StatusTooManyRequests:
			return true
		case http.StatusServiceUnavailable:
			// A full queue, disk or server stored nothing, nor did a busy server
			// (it refused the body before reading it); other 503s (a
			// request that ran out of time, a server stopping) may have
			// done their work.
			return ce.Code == spool.CodeQueueFull || ce.Code == spool.CodeDiskFull || ce.Code == spool.CodeServerFull || ce.Code == spool.CodeStorageFull || ce.Code == spool.CodeServerBusy || mode == repeatSafe
		case http.StatusBadGateway, http.StatusGatewayTimeout:
			return mode != repeatIfUnsent
		}
		return false
	}
	var te *TransportError
	if errors.As(err, &te) {
		return notSent(te.Err) || mode == repeatSafe
	}
	return false
}

// notSent reports whether a transport failure happened before the request
// could reach the server: no connection could be opened.
func notSent(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// backPressure reports whether err says the server refused the request
// for lack of room or capacity and stored nothing: 429, or 503 queue_full
// or server_busy.
func backPressure(err error) bool {
	var ce *Error
	if !errors.As(err, &ce) {
		return false
	}
	return ce.Status == http.StatusTooManyRequests ||
		ce.Status == http.StatusServiceUnavailable && (ce.Code == spool.CodeQueueFull || ce.Code == spool.CodeServerBusy)
}

// backoff is the wait before retry n (n >= 1) after err: full jitter over
// the capped exponential, or the server's Retry-After when longer, capped
// by the policy's Max.
func (c *Client) backoff(n int, err error) time.Duration {
	ceil := float64(c.retry.Base) * math.Pow(2, float64(min(n, 62)-1))
	if ceil > float64(c.retry.Max) {
		ceil = float64(c.retry.Max)
	}
	d := time.Duration(c.rand() * ceil)
	var ce *Error
	if errors.As(err, &ce) && ce.RetryAfter > d {
		d = min(ce.RetryAfter, c.retry.Max)
	}
	return d
}

// sleepCtx waits d, or until ctx is done (its error is returned then).
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
