package server

import (
	"context"
	"net/http"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
)

// bulkBody is the body of the bulk actions: a filter, optional.
type bulkBody struct {
	spool.BulkRequest
}

func (*bulkBody) optionalBody() {}

// bulk returns the endpoint of POST /v1/queues/{queue}/jobs:<action>: the
// action on every job of the queue that passes the filter, or with
// dry_run the count of those it would change.
func (s *Server) bulk(action engine.BulkAction) func(ctx context.Context, c *call, req *bulkBody) (int, *spool.BulkResponse, error) {
	return func(ctx context.Context, c *call, req *bulkBody) (int, *spool.BulkResponse, error) {
		n, err := s.engine.Bulk(ctx, c.queue, action, req.Filter(), req.DryRun)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, &spool.BulkResponse{Count: n, DryRun: req.DryRun}, nil
	}
}

// deleteJob: POST /v1/jobs/{id}/delete.
func (s *Server) deleteJob(ctx context.Context, c *call, _ *noBody) (int, *spool.BulkResponse, error) {
	if err := s.engine.Delete(ctx, c.id); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &spool.BulkResponse{Count: 1}, nil
}

// deleteQueue: DELETE /v1/queues/{queue}.
func (s *Server) deleteQueue(ctx context.Context, c *call, _ *noBody) (int, *spool.BulkResponse, error) {
	n, err := s.engine.DeleteQueue(ctx, c.queue)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &spool.BulkResponse{Count: n}, nil
}
