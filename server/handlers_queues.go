package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
)

// listQueues: GET /v1/queues.
func (s *Server) listQueues(ctx context.Context, c *call, _ *noBody) (int, *spool.QueuesResponse, error) {
	qs, err := s.engine.Queues(ctx)
	if err != nil {
		return 0, nil, err
	}
	qs = filterQueues(c, qs)
	if qs == nil {
		qs = []spool.QueueInfo{}
	}
	u, b, err := s.engine.Usage(ctx)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &spool.QueuesResponse{Queues: qs, Budget: &spool.BudgetInfo{
		Queues:       spool.BudgetUse{Used: u.Queues, Limit: b.MaxQueues},
		Jobs:         spool.BudgetUse{Used: u.Unfinished, Limit: b.MaxJobs},
		PayloadBytes: spool.BudgetUse{Used: u.PayloadBytes, Limit: b.MaxPayloadBytes},
	}}, nil
}

// getQueue: GET /v1/queues/{queue}.
func (s *Server) getQueue(ctx context.Context, c *call, _ *noBody) (int, *spool.QueueInfo, error) {
	q, err := s.engine.Queue(ctx, c.queue)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, q, nil
}

// queueStats: GET /v1/queues/{queue}/stats?history= → the queue's
// telemetry, with a history over the span asked for.
func (s *Server) queueStats(ctx context.Context, c *call, _ *noBody) (int, *spool.QueueStats, error) {
	var history time.Duration
	if v := c.query.Get("history"); v != "" {
		d, err := spool.ParseDuration(v)
		if err != nil {
			return 0, nil, spool.Invalidf("history: %v", err)
		}
		history = d
	}
	st, err := s.engine.QueueStats(ctx, c.queue, history)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, st, nil
}

// patchQueue: PATCH /v1/queues/{queue} changes the settings present in
// the body and answers with the queue as it is now.
func (s *Server) patchQueue(ctx context.Context, c *call, req *spool.QueueConfig) (int, *spool.QueueInfo, error) {
	q, err := s.engine.PatchQueue(ctx, c.queue, *req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, q, nil
}

// listJobs: GET /v1/queues/{queue}/jobs?state=&type=&tag=&ordering_key=&payload_field=&payload_value=&limit=&cursor=
// → one page.
func (s *Server) listJobs(ctx context.Context, c *call, _ *noBody) (int, *spool.JobList, error) {
	p := engine.ListParams{
		Queue: c.queue,
		JobFilter: spool.JobFilter{
			State:        spool.State(c.query.Get("state")),
			Type:         c.query.Get("type"),
			Tag:          c.query.Get("tag"),
			OrderingKey:  c.query.Get("ordering_key"),
			PayloadField: c.query.Get("payload_field"),
			PayloadValue: c.query.Get("payload_value"),
		},
		Cursor: c.query.Get("cursor"),
	}
	if v := c.query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > engine.MaxPageSize {
			return 0, nil, spool.Invalidf("limit must be an integer between 1 and %d, got %q", engine.MaxPageSize, truncate(v, 20))
		}
		p.Limit = n
	}
	page, err := s.engine.ListJobs(ctx, p)
	if err != nil {
		return 0, nil, err
	}
	if page.Jobs == nil {
		page.Jobs = []*spool.Job{}
	}
	return http.StatusOK, page, nil
}
