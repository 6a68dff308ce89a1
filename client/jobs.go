package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/spoolq/spool"
)

// Enqueue adds a job to a queue. The job is on disk when Enqueue returns
// without error. existing is true when req.IdempotencyKey matched an
// earlier job, which is returned instead of a new one.
//
// A full queue returns an *Error that unwraps to spool.ErrQueueFull, with
// RetryAfter set to the server's estimate of when there will be room.
func (c *Client) Enqueue(ctx context.Context, queue string, req spool.EnqueueRequest) (job *spool.Job, existing bool, err error) {
	if queue == "" {
		return nil, false, errors.New("client: Enqueue: empty queue name")
	}
	job = new(spool.Job)
	resp, err := c.do(ctx, call{
		method: http.MethodPost,
		path:   "/v1/queues/" + pathEscape(queue) + "/jobs",
		body:   req,
	}, job)
	if err != nil {
		return nil, false, err
	}
	return job, resp.status == http.StatusOK, nil
}

// EnqueueBatch adds many jobs to a queue, all or none, and returns them in
// request order. A job whose idempotency key matched an earlier one is that
// earlier job.
func (c *Client) EnqueueBatch(ctx context.Context, queue string, reqs []spool.EnqueueRequest) ([]*spool.Job, error) {
	if queue == "" {
		return nil, errors.New("client: EnqueueBatch: empty queue name")
	}
	var out spool.JobsResponse
	_, err := c.do(ctx, call{
		method: http.MethodPost,
		path:   "/v1/queues/" + pathEscape(queue) + "/jobs:batch",
		body:   spool.BatchEnqueueRequest{Jobs: reqs},
	}, &out)
	if err != nil {
		return nil, err
	}
	return out.Jobs, nil
}

// Get returns a job. With wait > 0 the server holds the request until the
// job is finished (succeeded, dead or cancelled) or the wait ends, and
// returns the job as it is then: check its State.
func (c *Client) Get(ctx context.Context, id string, wait time.Duration) (*spool.Job, error) {
	if id == "" {
		return nil, errors.New("client: Get: empty job id")
	}
	cl := call{method: http.MethodGet, path: "/v1/jobs/" + pathEscape(id), wait: wait}
	if wait > 0 {
		cl.query = url.Values{"wait": {wait.String()}}
	}
	job := new(spool.Job)
	if _, err := c.do(ctx, cl, job); err != nil {
		return nil, err
	}
	return job, nil
}

// Cancel cancels a job. A job not yet started is cancelled at once; an
// active one is marked cancel_requested and becomes cancelled at its
// worker's next heartbeat or ack. The job is returned as it is now.
func (c *Client) Cancel(ctx context.Context, id string) (*spool.Job, error) {
	if id == "" {
		return nil, errors.New("client: Cancel: empty job id")
	}
	job := new(spool.Job)
	if _, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/jobs/" + pathEscape(id)}, job); err != nil {
		return nil, err
	}
	return job, nil
}

// Retry puts a dead or cancelled job back in its queue with a fresh set of
// attempts.
func (c *Client) Retry(ctx context.Context, id string) (*spool.Job, error) {
	if id == "" {
		return nil, errors.New("client: Retry: empty job id")
	}
	job := new(spool.Job)
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/jobs/" + pathEscape(id) + "/retry"}, job); err != nil {
		return nil, err
	}
	return job, nil
}

// Queues describes every queue the server knows.
func (c *Client) Queues(ctx context.Context) ([]spool.QueueInfo, error) {
	var out spool.QueuesResponse
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/queues"}, &out); err != nil {
		return nil, err
	}
	return out.Queues, nil
}

// Queue describes one queue. A queue never used is an error that unwraps to
// spool.ErrNotFound.
func (c *Client) Queue(ctx context.Context, name string) (*spool.QueueInfo, error) {
	if name == "" {
		return nil, errors.New("client: Queue: empty queue name")
	}
	out := new(spool.QueueInfo)
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/queues/" + pathEscape(name)}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateQueue changes the settings present in cfg (creating the queue if it
// was never used) and returns the queue as it is now.
func (c *Client) UpdateQueue(ctx context.Context, name string, cfg spool.QueueConfig) (*spool.QueueInfo, error) {
	if name == "" {
		return nil, errors.New("client: UpdateQueue: empty queue name")
	}
	out := new(spool.QueueInfo)
	if _, err := c.do(ctx, call{method: http.MethodPatch, path: "/v1/queues/" + pathEscape(name), body: cfg}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ListJobsOptions selects a page of a queue's jobs.
type ListJobsOptions struct {
	// State keeps only jobs in this state; empty means all.
	State spool.State
	// Limit is the page size (0: the server's default).
	Limit int
	// Cursor is the NextCursor of the previous page; empty for the first.
	Cursor string
}

// ListJobs returns one page of a queue's jobs, oldest first. Pass the
// answer's NextCursor to get the next page; it is empty on the last.
func (c *Client) ListJobs(ctx context.Context, queue string, opts ListJobsOptions) (*spool.JobList, error) {
	if queue == "" {
		return nil, errors.New("client: ListJobs: empty queue name")
	}
	q := url.Values{}
	if opts.State != "" {
		q.Set("state", string(opts.State))
	}
	if opts.Limit > 0 {
		q.Set("limit", itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	out := new(spool.JobList)
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/queues/" + pathEscape(queue) + "/jobs", query: q}, out); err != nil {
		return nil, err
	}
	return out, nil
}
