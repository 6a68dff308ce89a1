package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spoolq/spool"
)

// idempotencyHeader names the header that may carry an enqueue's
// idempotency key.
const idempotencyHeader = "Idempotency-Key"

// enqueueBody is the body of POST /v1/queues/{queue}/jobs.
type enqueueBody struct {
	spool.EnqueueRequest
}

// bindHeaders takes the idempotency key from the Idempotency-Key header
// when the body has none; both given and different is an error.
func (b *enqueueBody) bindHeaders(h http.Header) error {
	key := h.Get(idempotencyHeader)
	switch {
	case key == "":
	case b.IdempotencyKey == "":
		b.IdempotencyKey = key
	case b.IdempotencyKey != key:
		return spool.Invalidf("the %s header (%q) and idempotency_key (%q) differ; send one of them", idempotencyHeader, truncate(key, 40), truncate(b.IdempotencyKey, 40))
	}
	return nil
}

// batchBody is the body of POST /v1/queues/{queue}/jobs:batch.
type batchBody struct {
	spool.BatchEnqueueRequest
}

// bindHeaders makes an Idempotency-Key header cover the whole batch: each
// job without a key of its own gets "<header>#<index>", so a retried batch
// returns the jobs of the first attempt.
func (b *batchBody) bindHeaders(h http.Header) error {
	key := h.Get(idempotencyHeader)
	if key == "" {
		return nil
	}
	for i := range b.Jobs {
		if b.Jobs[i].IdempotencyKey == "" {
			b.Jobs[i].IdempotencyKey = key + "#" + strconv.Itoa(i)
		}
	}
	return nil
}

// checkRunAt refuses a run_at further ahead than a delay may be, and a
// callback_url when webhooks are off (no webhook secret) or that could
// never be delivered (a target the webhook allowlist refuses). Messages start
// with field, or with field[index] for the element of a list (index >= 0),
// built only when there is something to check.
func (s *Server) checkRunAt(r *spool.EnqueueRequest, field string, index int) error {
	if r.CallbackURL == "" && r.RunAt == nil {
		return nil
	}
	if index >= 0 {
		field += "[" + strconv.Itoa(index) + "]: "
	}
	if r.CallbackURL != "" {
		if s.cfg.WebhookSecret == "" {
			return spool.Invalidf("%scallback_url: webhooks are not enabled on this server (it has no webhook secret; see spool serve --webhook-secret)", field)
		}
		if err := s.hookAllow.CheckTarget(r.CallbackURL); err != nil {
			return spool.Invalidf("%s%v", field, err)
		}
	}
	if r.RunAt == nil {
		return nil
	}
	if limit := s.cfg.Clock.Now().Add(spool.MaxDelay); r.RunAt.After(limit) {
		return spool.Invalidf("%srun_at %s is more than %s ahead", field, r.RunAt.Format(time.RFC3339), spool.MaxDelay)
	}
	return nil
}

// enqueue: POST /v1/queues/{queue}/jobs → 202 and the job, or 200 and the
// original job for a repeated idempotency key.
func (s *Server) enqueue(ctx context.Context, c *call, req *enqueueBody) (int, *spool.Job, error) {
	if err := s.checkRunAt(&req.EnqueueRequest, "", -1); err != nil {
		return 0, nil, err
	}
	res, err := s.engine.Enqueue(ctx, c.queue, []spool.EnqueueRequest{req.EnqueueRequest})
	if err != nil {
		return 0, nil, err
	}
	job := res[0].Job
	c.w.Header().Set("Location", "/v1/jobs/"+job.ID)
	if res[0].Existing {
		return http.StatusOK, job, nil
	}
	return http.StatusAccepted, job, nil
}

// enqueueBatch: POST /v1/queues/{queue}/jobs:batch → 202 and the jobs in
// request order, all or none; 200 when every job was an idempotent repeat.
// The answer's existing lists the indices of the idempotent repeats.
func (s *Server) enqueueBatch(ctx context.Context, c *call, req *batchBody) (int, any, error) {
	for i := range req.Jobs {
		if err := s.checkRunAt(&req.Jobs[i], "jobs", i); err != nil {
			return 0, nil, err
		}
	}
	res, err := s.engine.Enqueue(ctx, c.queue, req.Jobs)
	if err != nil {
		return 0, nil, err
	}
	status := http.StatusOK
	var existing []int
	for i, r := range res {
		if r.Existing {
			existing = append(existing, i)
		} else {
			status = http.StatusAccepted
		}
	}
	h := c.w.Header()
	h.Add("Vary", "Prefer")
	if prefersMinimal(c.r.Header) {
		h.Set("Preference-Applied", "return=minimal")
		out := &spool.JobIDsResponse{IDs: make([]string, len(res)), Existing: existing}
		for i, r := range res {
			out.IDs[i] = r.Job.ID
		}
		return status, out, nil
	}
	out := &spool.JobsResponse{Jobs: make([]*spool.Job, len(res)), Existing: existing}
	for i, r := range res {
		out.Jobs[i] = r.Job
	}
	return status, out, nil
}

// prefersMinimal reports whether the request's Prefer headers (RFC 7240)
// ask for return=minimal. Preferences are comma-separated, may carry
// parameters after a semicolon, and their names are case-insensitive; any
// other preference is ignored, as the RFC asks.
func prefersMinimal(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for pref := range strings.SplitSeq(v, ",") {
			pref, _, _ = strings.Cut(pref, ";")
			name, value, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if ok && strings.EqualFold(strings.TrimSpace(name), "return") &&
				strings.Trim(strings.TrimSpace(value), `"`) == "minimal" {
				return true
			}
		}
	}
	return false
}

// getJob: GET /v1/jobs/{id}[?wait=30s]. With wait, the answer comes when
// the job reaches a terminal state or the wait ends.
func (s *Server) getJob(ctx context.Context, c *call, _ *noBody) (int, *spool.Job, error) {
	var wait time.Duration
	if v := c.query.Get("wait"); v != "" {
		d, err := spool.ParseDuration(v)
		if err != nil {
			return 0, nil, spool.Invalidf("wait: %v", err)
		}
		if d > spool.MaxWait {
			return 0, nil, spool.Invalidf("wait must be at most %s", spool.MaxWait)
		}
		wait = d
	}
	job, err := s.engine.Get(ctx, c.id, wait)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, job, nil
}

// jobParents: GET /v1/jobs/{id}/parents.
func (s *Server) jobParents(ctx context.Context, c *call, _ *noBody) (int, *spool.JobsResponse, error) {
	jobs, err := s.engine.Parents(ctx, c.id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &spool.JobsResponse{Jobs: jobs}, nil
}

// cancelJob: DELETE /v1/jobs/{id}.
func (s *Server) cancelJob(ctx context.Context, c *call, _ *noBody) (int, *spool.Job, error) {
	job, err := s.engine.Cancel(ctx, c.id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, job, nil
}

// retryJob: POST /v1/jobs/{id}/retry.
func (s *Server) retryJob(ctx context.Context, c *call, _ *noBody) (int, *spool.Job, error) {
	job, err := s.engine.Retry(ctx, c.id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, job, nil
}
