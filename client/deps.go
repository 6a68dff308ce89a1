package client

import (
	"context"
	"errors"
	"net/http"

	"github.com/spoolq/spool"
)

// Parents returns the jobs a job depends on (its depends_on), in that
// order, each with its state and result: a join job reads its inputs
// here. Parents purged since are left out.
func (c *Client) Parents(ctx context.Context, id string) ([]*spool.Job, error) {
	if id == "" {
		return nil, errors.New("client: Parents: empty job id")
	}
	var out spool.JobsResponse
	cl := call{method: http.MethodGet, path: "/v1/jobs/" + pathEscape(id) + "/parents", repeat: repeatSafe}
	if _, err := c.do(ctx, cl, &out); err != nil {
		return nil, err
	}
	return out.Jobs, nil
}
