package client

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/spoolq/spool"
)

// Lease claims up to req.Max ready jobs from req.Queues (first queue
// first). With req.Wait set, the server holds the request until a job is
// ready or the wait ends; an empty slice means nothing was ready. Each job
// carries its Lease: present Lease.Token to Heartbeat, Complete and Fail,
// and finish (or heartbeat) before Lease.ExpiresAt, or the job is delivered
// again.
func (c *Client) Lease(ctx context.Context, req spool.LeaseRequest) ([]*spool.Job, error) {
	cl := call{method: http.MethodPost, path: "/v1/leases", body: req}
	if req.Wait != nil {
		cl.wait = req.Wait.D()
	}
	var out spool.JobsResponse
	if _, err := c.do(ctx, cl, &out); err != nil {
		return nil, err
	}
	if out.Jobs == nil {
		out.Jobs = []*spool.Job{}
	}
	return out.Jobs, nil
}

// Heartbeat extends a lease and reports progress. When the answer's
// CancelRequested is true the job has been cancelled: stop working on it.
// A lost lease is an error that unwraps to spool.ErrLeaseLost.
func (c *Client) Heartbeat(ctx context.Context, id string, req spool.HeartbeatRequest) (*spool.HeartbeatResponse, error) {
	if id == "" {
		return nil, errors.New("client: Heartbeat: empty job id")
	}
	out := new(spool.HeartbeatResponse)
	cl := call{method: http.MethodPost, path: "/v1/jobs/" + pathEscape(id) + "/heartbeat", body: req, repeat: repeatSafe}
	if _, err := c.do(ctx, cl, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Complete records a job's success and its result, and returns the job as
// it is now. A stale token is an error that unwraps to spool.ErrLeaseLost:
// the lease expired and the job went to another worker.
func (c *Client) Complete(ctx context.Context, id string, req spool.CompleteRequest) (*spool.Job, error) {
	if id == "" {
		return nil, errors.New("client: Complete: empty job id")
	}
	job := new(spool.Job)
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/jobs/" + pathEscape(id) + "/complete", body: req}, job); err != nil {
		return nil, err
	}
	return job, nil
}

// Fail records a failed attempt. The job is retried after a backoff (or
// req.RetryIn), or goes dead when req.Final is set or its attempts are
// spent. The job is returned as it is now.
func (c *Client) Fail(ctx context.Context, id string, req spool.FailRequest) (*spool.Job, error) {
	if id == "" {
		return nil, errors.New("client: Fail: empty job id")
	}
	job := new(spool.Job)
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/jobs/" + pathEscape(id) + "/fail", body: req}, job); err != nil {
		return nil, err
	}
	return job, nil
}

// Release hands an active job back without finishing it: the job is ready
// again at once for any worker, and the attempt does not count (no error
// is recorded). A job whose cancel was requested becomes cancelled. A stale
// token is an error that unwraps to spool.ErrLeaseLost. The job is returned
// as it is now.
func (c *Client) Release(ctx context.Context, id, token string) (*spool.Job, error) {
	if id == "" {
		return nil, errors.New("client: Release: empty job id")
	}
	job := new(spool.Job)
	cl := call{method: http.MethodPost, path: "/v1/jobs/" + pathEscape(id) + "/release", body: spool.ReleaseRequest{Token: token}}
	if _, err := c.do(ctx, cl, job); err != nil {
		return nil, err
	}
	return job, nil
}

// Ack records many completes, fails and releases in one request. Each ack stands
// alone: the results, in request order, say which were applied and why the
// others were not.
func (c *Client) Ack(ctx context.Context, acks []spool.Ack) ([]spool.AckResult, error) {
	var out spool.AcksResponse
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/acks", body: spool.AcksRequest{Acks: acks}}, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
