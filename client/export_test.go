package client

import (
	"context"
	"time"
)

// WithSleep replaces the wait between retries (tests record the waits
// instead of waiting).
func WithSleep(f func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) error {
		c.sleep = f
		return nil
	}
}

// WithRand replaces the jitter source: f returns a float in [0,1).
func WithRand(f func() float64) Option {
	return func(c *Client) error {
		c.rand = f
		return nil
	}
}

// PendingEnqueues is how many Enqueue calls to queue wait for the request
// in flight.
func PendingEnqueues(c *Client, queue string) int {
	if c.coalesce == nil {
		return 0
	}
	c.coalesce.mu.Lock()
	defer c.coalesce.mu.Unlock()
	if qb := c.coalesce.queues[queue]; qb != nil {
		return len(qb.pending)
	}
	return 0
}

// WithCoalescedBodyLimit bounds the payloads of one coalesced request
// (default 4 MiB), so tests reach it with small payloads.
func WithCoalescedBodyLimit(n int) Option {
	return func(c *Client) error {
		if c.coalesce != nil {
			c.coalesce.maxBody = n
		}
		return nil
	}
}

// PrefetchWindow is how many jobs w currently leases ahead of its free
// handler slots.
func PrefetchWindow(w *Worker) int { return int(w.prefetch.Load()) }
