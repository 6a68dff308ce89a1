package server

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/spoolq/spool"
)

// lease: POST /v1/leases → the leased jobs with their tokens (an empty
// list when the wait ends with nothing).
func (s *Server) lease(ctx context.Context, c *call, req *spool.LeaseRequest) (int, *spool.JobsResponse, error) {
	if err := checkQueues(c, req.Queues); err != nil {
		return 0, nil, err
	}
	if req.Worker == "" {
		req.Worker = c.r.RemoteAddr
	}
	jobs, err := s.engine.Lease(ctx, *req)
	if err != nil {
		return 0, nil, err
	}
	if jobs == nil {
		jobs = []*spool.Job{}
	}
	return http.StatusOK, &spool.JobsResponse{Jobs: jobs}, nil
}

// heartbeat: POST /v1/jobs/{id}/heartbeat.
func (s *Server) heartbeat(ctx context.Context, c *call, req *spool.HeartbeatRequest) (int, *spool.HeartbeatResponse, error) {
	resp, err := s.engine.Heartbeat(ctx, c.id, *req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, resp, nil
}

// complete: POST /v1/jobs/{id}/complete.
func (s *Server) complete(ctx context.Context, c *call, req *spool.CompleteRequest) (int, *spool.Job, error) {
	job, err := s.engine.Complete(ctx, c.id, *req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, job, nil
}

// fail: POST /v1/jobs/{id}/fail.
func (s *Server) fail(ctx context.Context, c *call, req *spool.FailRequest) (int, *spool.Job, error) {
	job, err := s.engine.Fail(ctx, c.id, *req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, job, nil
}

// release: POST /v1/jobs/{id}/release hands an active job back: ready at
// once, the attempt not counted.
func (s *Server) release(ctx context.Context, c *call, req *spool.ReleaseRequest) (int, *spool.Job, error) {
	job, err := s.engine.Release(ctx, c.id, *req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, job, nil
}

// acks: POST /v1/acks → one result per ack, in order; each ack stands
// alone.
func (s *Server) acks(ctx context.Context, c *call, req *spool.AcksRequest) (int, *spool.AcksResponse, error) {
	for i := range req.Acks {
		// Ids are compared in canonical form, as in the paths.
		if u, err := uuid.Parse(req.Acks[i].ID); err == nil && len(req.Acks[i].ID) == 36 {
			req.Acks[i].ID = u.String()
		}
		if err := s.checkJobScope(ctx, c, req.Acks[i].ID); err != nil {
			return 0, nil, err
		}
	}
	results, err := s.engine.Ack(ctx, req.Acks)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &spool.AcksResponse{Results: results}, nil
}
