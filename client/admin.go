package client

import (
	"context"
	"errors"
	"net/http"

	"github.com/spoolq/spool"
)

// bulkWait is how long the server may work on a bulk action or a queue
// deletion beyond its usual request timeout (they go through a queue a
// batch at a time).
const bulkWait = spool.MaxWait

// Delete deletes a job that is not active, with its payload and result.
// A job not finished is cancelled first (jobs that depend on it are
// cancelled too); an active job is refused with an error that unwraps to
// spool.ErrConflict: cancel it first, and delete it once it is cancelled.
func (c *Client) Delete(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("client: Delete: empty job id")
	}
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/jobs/" + pathEscape(id) + "/delete"}, nil)
	return err
}

// RetryJobs puts back every dead or cancelled job of queue that passes
// req's filter (State, Type, Tag, OrderingKey; an empty request retries
// every dead and cancelled job) and returns how many. With req.DryRun it
// only counts them. When the queue fills up it stops with an error that
// unwraps to spool.ErrQueueFull; the jobs retried until then stay retried.
func (c *Client) RetryJobs(ctx context.Context, queue string, req spool.BulkRequest) (int64, error) {
	return c.bulk(ctx, queue, "retry", req)
}

// CancelJobs cancels every job of queue not started yet that passes req's
// filter and returns how many: with an empty request it drains the queue
// (running jobs finish). Active jobs are marked cancel_requested only when
// req.State is spool.StateActive. With req.DryRun it only counts them.
func (c *Client) CancelJobs(ctx context.Context, queue string, req spool.BulkRequest) (int64, error) {
	return c.bulk(ctx, queue, "cancel", req)
}

// DeleteJobs deletes every job of queue that is not active and passes
// req's filter, as Delete does, and returns how many: with an empty
// request it purges the queue. With req.DryRun it only counts them.
func (c *Client) DeleteJobs(ctx context.Context, queue string, req spool.BulkRequest) (int64, error) {
	return c.bulk(ctx, queue, "delete", req)
}

func (c *Client) bulk(ctx context.Context, queue, action string, req spool.BulkRequest) (int64, error) {
	if queue == "" {
		return 0, errors.New("client: " + action + ": empty queue name")
	}
	var out spool.BulkResponse
	cl := call{method: http.MethodPost, path: "/v1/queues/" + pathEscape(queue) + "/jobs:" + action, body: req, wait: bulkWait}
	if _, err := c.do(ctx, cl, &out); err != nil {
		return 0, err
	}
	return out.Count, nil
}

// DeleteQueue deletes a queue: its jobs, its topic subscriptions and its
// settings, and returns how many jobs it deleted. A queue with active jobs
// is refused (spool.ErrConflict): cancel them first. A queue never used is
// spool.ErrNotFound.
func (c *Client) DeleteQueue(ctx context.Context, name string) (int64, error) {
	if name == "" {
		return 0, errors.New("client: DeleteQueue: empty queue name")
	}
	var out spool.BulkResponse
	if _, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/queues/" + pathEscape(name), wait: bulkWait}, &out); err != nil {
		return 0, err
	}
	return out.Count, nil
}
