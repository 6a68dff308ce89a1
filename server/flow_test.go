package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestQueueFlowControlSettings(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	q := ts.patch("q", map[string]any{"concurrency": 3, "rate": 2.5})
	require.Equal(t, 3, *q.Config.Concurrency)
	require.Equal(t, 2.5, *q.Config.Rate)
	require.Equal(t, 3, *q.Config.Burst, "burst in force: the rate rounded up")

	q = ts.patch("q", map[string]any{"burst": 7})
	require.Equal(t, 7, *q.Config.Burst)
	require.Equal(t, 3, *q.Config.Concurrency)
	require.Equal(t, q.Config, ts.queue("q").Config, "GET shows what PATCH answered")

	// The limits hold for leases over HTTP.
	for range 5 {
		ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	}
	var got spool.JobsResponse
	ts.do("POST", "/v1/leases", spool.LeaseRequest{Queues: []string{"q"}, Max: 10}).ok(t, http.StatusOK, &got)
	require.Len(t, got.Jobs, 3, "the concurrency cap")

	q = ts.patch("q", map[string]any{"concurrency": 0, "rate": 0, "burst": 0})
	require.Equal(t, 0, *q.Config.Concurrency, "0 removes a limit")
	require.Equal(t, 0.0, *q.Config.Rate)
	ts.do("POST", "/v1/leases", spool.LeaseRequest{Queues: []string{"q"}, Max: 10}).ok(t, http.StatusOK, &got)
	require.Len(t, got.Jobs, 2)
}

func TestOrderingKeyOverHTTP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	a1 := ts.enqueue("q", spool.EnqueueRequest{Type: "t", OrderingKey: "user-1"})
	require.Equal(t, "user-1", a1.OrderingKey)
	ts.enqueue("q", spool.EnqueueRequest{Type: "t", OrderingKey: "user-1"})
	var got spool.JobsResponse
	ts.do("POST", "/v1/leases", spool.LeaseRequest{Queues: []string{"q"}, Max: 10}).ok(t, http.StatusOK, &got)
	require.Len(t, got.Jobs, 1)
	require.Equal(t, a1.ID, got.Jobs[0].ID)
}
