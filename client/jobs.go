package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"time"

	"github.com/spoolq/spool"
)

// Enqueue adds a job to a queue. The job is on disk when Enqueue returns
// without error. existing is true when req.IdempotencyKey matched a job
// enqueued earlier, which is returned instead of a new one.
//
// Enqueue retries a full queue (honouring its Retry-After), a server that
// cannot serve, a broken connection and a timeout, as the Client's
// RetryPolicy says, and sends the same idempotency key with every retry, so
// a retried enqueue never creates a second job. When req has no key and
// retries are on, Enqueue makes one up ("spool-go-" and 26 random
// characters; it shows in the job's idempotency_key); existing is then
// false. With a key of your own, existing may also be true after a retry
// whose first try reached the server, since that try enqueued the job.
//
// A full queue that stays full is an *Error that unwraps to
// spool.ErrQueueFull, with RetryAfter set to the server's estimate of when
// there will be room. Give ctx a deadline to bound how long Enqueue may
// wait: it never sleeps past it.
//
// Concurrent calls to the same queue share batch requests (see
// WithCoalescing): each still gets its own job or its own error.
func (c *Client) Enqueue(ctx context.Context, queue string, req spool.EnqueueRequest) (job *spool.Job, existing bool, err error) {
	if queue == "" {
		return nil, false, errors.New("client: Enqueue: empty queue name")
	}
	auto := false
	if req.IdempotencyKey == "" && c.retry.MaxRetries > 0 {
		req.IdempotencyKey = newIdempotencyKey()
		auto = true
	}
	if c.coalesce != nil && coalescible(queue, &req) {
		job, existing, err = c.coalesce.enqueue(ctx, queue, req)
	} else {
		job, existing, err = c.enqueueOne(ctx, queue, req)
	}
	return job, existing && !auto, err
}

// enqueueOne sends one job in a request of its own.
func (c *Client) enqueueOne(ctx context.Context, queue string, req spool.EnqueueRequest) (*spool.Job, bool, error) {
	cl := call{
		method: http.MethodPost,
		path:   "/v1/queues/" + pathEscape(queue) + "/jobs",
		body:   req,
		repeat: repeatSafe,
	}
	if req.IdempotencyKey != "" {
		// The header also lets net/http resend the request on a
		// keep-alive connection that the server closed.
		cl.header = http.Header{idempotencyHeader: {req.IdempotencyKey}}
	}
	job := new(spool.Job)
	resp, err := c.do(ctx, cl, job)
	if err != nil {
		return nil, false, err
	}
	return job, resp.status == http.StatusOK, nil
}

// Push enqueues a job of type typ with payload and options: the short form
// of Enqueue, with the same retries and idempotency guarantee.
//
// payload is any value encoding/json can marshal, or raw JSON given as
// json.RawMessage or []byte; nil means no payload.
//
//	job, err := c.Push(ctx, "emails", "welcome", map[string]string{"to": "ada@example.com"},
//		client.Delay(time.Minute), client.MaxAttempts(5))
func (c *Client) Push(ctx context.Context, queue, typ string, payload any, opts ...EnqueueOption) (*spool.Job, error) {
	req, err := NewRequest(typ, payload, opts...)
	if err != nil {
		return nil, err
	}
	job, _, err := c.Enqueue(ctx, queue, req)
	return job, err
}

// EnqueueBatch adds many jobs to a queue, all or none, and returns them in
// request order. A job whose idempotency key matched an earlier one is that
// earlier job. Retries are those of Enqueue: with retries on, the batch
// carries an Idempotency-Key header, which the server turns into a key for
// each job that has none, so a retried batch never stores its jobs twice.
func (c *Client) EnqueueBatch(ctx context.Context, queue string, reqs []spool.EnqueueRequest) ([]*spool.Job, error) {
	if queue == "" {
		return nil, errors.New("client: EnqueueBatch: empty queue name")
	}
	return c.postBatch(ctx, "/v1/queues/"+pathEscape(queue)+"/jobs:batch", spool.BatchEnqueueRequest{Jobs: reqs}, len(reqs))
}

// EnqueueBatchIDs is EnqueueBatch for producers that need only the jobs'
// ids: the server answers with the ids, in request order, instead of the
// stored jobs (it is sent "Prefer: return=minimal"), which saves encoding,
// sending and decoding every job, payload included. An element whose
// idempotency key matched an earlier job has that job's id.
func (c *Client) EnqueueBatchIDs(ctx context.Context, queue string, reqs []spool.EnqueueRequest) ([]string, error) {
	if queue == "" {
		return nil, errors.New("client: EnqueueBatchIDs: empty queue name")
	}
	cl := c.batchCall("/v1/queues/"+pathEscape(queue)+"/jobs:batch", spool.BatchEnqueueRequest{Jobs: reqs})
	cl.header.Set("Prefer", "return=minimal")
	var out spool.JobIDsResponse
	if _, err := c.do(ctx, cl, &out); err != nil {
		return nil, err
	}
	if len(out.IDs) != len(reqs) {
		// A server that ignores the preference answers with the jobs,
		// which decode to no ids.
		return nil, fmt.Errorf("client: EnqueueBatchIDs: the server answered %d ids for %d jobs (does it apply Prefer: return=minimal?)", len(out.IDs), len(reqs))
	}
	return out.IDs, nil
}

// batchCall is the call that sends an all-or-nothing batch of new jobs to
// path. With retries on, the batch carries one Idempotency-Key header for
// all its tries; the server derives a key from it for each job that has
// none, so a retry never stores jobs twice.
func (c *Client) batchCall(path string, body any) call {
	cl := call{method: http.MethodPost, path: path, body: body, repeat: repeatSafe, header: http.Header{}}
	if c.retry.MaxRetries > 0 {
		cl.header.Set(idempotencyHeader, newIdempotencyKey())
	}
	return cl
}

// postBatch sends an all-or-nothing batch of new jobs (an enqueue or a
// publish, see batchCall) and returns the stored jobs. n is the number of
// jobs expected, to size the answer.
func (c *Client) postBatch(ctx context.Context, path string, body any, n int) ([]*spool.Job, error) {
	cl := c.batchCall(path, body)
	out := spool.JobsResponse{Jobs: make([]*spool.Job, 0, n)}
	if _, err := c.do(ctx, cl, &out); err != nil {
		return nil, err
	}
	return out.Jobs, nil
}

// idempotencyHeader names the header that carries an idempotency key.
const idempotencyHeader = "Idempotency-Key"

// newIdempotencyKey returns a fresh random idempotency key.
func newIdempotencyKey() string { return "spool-go-" + rand.Text() }

// Get returns a job. With wait > 0 the server holds the request until the
// job is finished (succeeded, dead or cancelled) or the wait ends, and
// returns the job as it is then: check its State.
func (c *Client) Get(ctx context.Context, id string, wait time.Duration) (*spool.Job, error) {
	if id == "" {
		return nil, errors.New("client: Get: empty job id")
	}
	cl := call{method: http.MethodGet, path: "/v1/jobs/" + pathEscape(id), wait: wait, repeat: repeatSafe}
	if wait > 0 {
		cl.query = url.Values{"wait": {wait.String()}}
	}
	job := new(spool.Job)
	if _, err := c.do(ctx, cl, job); err != nil {
		return nil, err
	}
	return job, nil
}

// waitStep is the longest long-poll of Wait; it loops for longer waits.
const waitStep = 30 * time.Second

// Wait returns a job once it is finished (succeeded, dead or cancelled),
// long-polling the server in a loop until it is or ctx ends. When ctx ends
// first, Wait returns the job as last seen (nil if never) and an error that
// wraps ctx's error. Check the job's State: a job that failed for good is
// returned without error.
func (c *Client) Wait(ctx context.Context, id string) (*spool.Job, error) {
	if id == "" {
		return nil, errors.New("client: Wait: empty job id")
	}
	var last *spool.Job
	for {
		if err := ctx.Err(); err != nil {
			return last, fmt.Errorf("waiting for job %s: %w", id, err)
		}
		wait := waitStep
		if dl, ok := ctx.Deadline(); ok {
			// End the long-poll before the deadline, so its answer is read.
			left := time.Until(dl)
			switch {
			case left > 2*time.Second:
				left -= time.Second
			default:
				left /= 2
			}
			wait = min(wait, left.Truncate(time.Millisecond))
		}
		wait = max(wait, 10*time.Millisecond)
		job, err := c.Get(ctx, id, wait)
		if err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("waiting for job %s: %w", id, ctx.Err())
			}
			return last, err
		}
		last = job
		if job.State.Terminal() {
			return job, nil
		}
	}
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
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/queues", repeat: repeatSafe}, &out); err != nil {
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
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/queues/" + pathEscape(name), repeat: repeatSafe}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// QueueStats returns a queue's telemetry (GET /v1/queues/{queue}/stats),
// with a history over the last history when it is positive.
func (c *Client) QueueStats(ctx context.Context, name string, history time.Duration) (*spool.QueueStats, error) {
	if name == "" {
		return nil, errors.New("client: QueueStats: empty queue name")
	}
	cl := call{method: http.MethodGet, path: "/v1/queues/" + pathEscape(name) + "/stats", repeat: repeatSafe}
	if history > 0 {
		cl.query = url.Values{"history": {history.String()}}
	}
	out := new(spool.QueueStats)
	if _, err := c.do(ctx, cl, out); err != nil {
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
	if _, err := c.do(ctx, call{method: http.MethodPatch, path: "/v1/queues/" + pathEscape(name), body: cfg, repeat: repeatSafe}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ListJobsOptions selects a page of a queue's jobs.
type ListJobsOptions struct {
	// State keeps only jobs in this state; empty means all.
	State spool.State
	// Type, Tag and OrderingKey, when set, keep only the jobs of this
	// type, carrying this tag, or of this ordering key. With any of them
	// set a page may hold fewer than Limit jobs (even none) and still have
	// a NextCursor.
	Type, Tag, OrderingKey string
	// PayloadField and PayloadValue, when set, keep only the jobs whose
	// payload has this top-level field equal to this JSON value (such as
	// 42 or "acme" with its quotes), as spool.JobFilter.
	PayloadField, PayloadValue string
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
	for k, v := range map[string]string{"type": opts.Type, "tag": opts.Tag, "ordering_key": opts.OrderingKey,
		"payload_field": opts.PayloadField, "payload_value": opts.PayloadValue} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if opts.Limit > 0 {
		q.Set("limit", itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	out := new(spool.JobList)
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/queues/" + pathEscape(queue) + "/jobs", query: q, repeat: repeatSafe}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Jobs iterates over a queue's jobs (those in opts.State, if set), oldest
// first, fetching a page of opts.Limit (default: the server's) at a time.
// Jobs carry no payload or result. An error ends the iteration; it is
// yielded with a nil job.
//
//	for job, err := range c.Jobs(ctx, "emails", client.ListJobsOptions{State: spool.StateDead}) {
//		if err != nil { return err }
//		...
//	}
func (c *Client) Jobs(ctx context.Context, queue string, opts ListJobsOptions) iter.Seq2[*spool.Job, error] {
	return func(yield func(*spool.Job, error) bool) {
		for {
			page, err := c.ListJobs(ctx, queue, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, j := range page.Jobs {
				if !yield(j, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			opts.Cursor = page.NextCursor
		}
	}
}
