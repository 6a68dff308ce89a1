package server_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

// The server-wide budget caps the queues and the jobs not yet finished
// across all queues, on both stores (cluster-wide on PostgreSQL: a second
// node sees the first one's jobs); each refusal has its own code, stores
// nothing, and the budget shows in GET /v1/queues and /metrics.
func TestBudget(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, store func(*server.Config)) {
		budget := func(c *server.Config) { c.MaxQueues, c.MaxJobs, c.MaxPayloadStored = 2, 5, 1<<20 }
		ts := newTestServer(t, store, budget)
		ts.do("POST", "/v1/queues/a/jobs:batch", map[string]any{"jobs": []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}, {Type: "t"}}}).
			ok(t, http.StatusAccepted, nil)
		ts.enqueue("b", spool.EnqueueRequest{Type: "t"})

		// A third queue is refused, by enqueue and by PATCH; nothing stored.
		r := ts.do("POST", "/v1/queues/c/jobs", spool.EnqueueRequest{Type: "t"})
		e := r.fails(t, http.StatusInsufficientStorage, spool.CodeTooManyQueues)
		require.Contains(t, e.Message, "maximum of 2 queues")
		require.Empty(t, r.h.Get("Retry-After"), "waiting does not bring a queue back")
		ts.do("PATCH", "/v1/queues/c", map[string]any{"paused": true}).fails(t, http.StatusInsufficientStorage, spool.CodeTooManyQueues)
		ts.do("GET", "/v1/queues/c", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
		ts.do("PATCH", "/v1/queues/a", map[string]any{"paused": false}).ok(t, http.StatusOK, nil)

		// Jobs over the budget are refused whole, with Retry-After.
		r = ts.do("POST", "/v1/queues/a/jobs:batch", map[string]any{"jobs": []spool.EnqueueRequest{{Type: "t"}, {Type: "t"}}})
		e = r.fails(t, http.StatusServiceUnavailable, spool.CodeServerFull)
		require.Contains(t, e.Message, "4 jobs not yet finished across all queues, and its budget is 5")
		ra, err := strconv.Atoi(r.h.Get("Retry-After"))
		require.NoError(t, err)
		require.Positive(t, ra)
		require.Equal(t, int64(3), ts.queue("a").Counts[spool.StateReady], "nothing of the batch was stored")
		last := ts.enqueue("b", spool.EnqueueRequest{Type: "t"})
		ts.do("PUT", "/v1/topics/news/subscriptions/a", nil).ok(t, http.StatusOK, nil)
		ts.do("POST", "/v1/topics/news/messages", spool.EnqueueRequest{Type: "t"}).fails(t, http.StatusServiceUnavailable, spool.CodeServerFull)

		var list spool.QueuesResponse
		ts.do("GET", "/v1/queues", nil).ok(t, http.StatusOK, &list)
		require.Equal(t, &spool.BudgetInfo{
			Queues:       spool.BudgetUse{Used: 2, Limit: 2},
			Jobs:         spool.BudgetUse{Used: 5, Limit: 5},
			PayloadBytes: spool.BudgetUse{Used: 0, Limit: 1 << 20},
		}, list.Budget)
		m := string(ts.do("GET", "/metrics", nil).body)
		require.Contains(t, m, `spool_budget_used{resource="jobs"} 5`)
		require.Contains(t, m, `spool_budget_limit{resource="queues"} 2`)
		require.Contains(t, m, `spool_admission_refused_total{code="server_full"} 2`)
		require.Contains(t, m, `spool_admission_refused_total{code="too_many_queues"} 2`)

		var cfg server.Config
		store(&cfg)
		if cfg.Store != "" {
			// Another node of the cluster counts the same jobs.
			other := newTestServer(t, store, budget)
			other.do("POST", "/v1/queues/b/jobs", spool.EnqueueRequest{Type: "t"}).fails(t, http.StatusServiceUnavailable, spool.CodeServerFull)
			other.do("POST", "/v1/queues/z/jobs", spool.EnqueueRequest{Type: "t"}).fails(t, http.StatusInsufficientStorage, spool.CodeTooManyQueues)
		}

		// Jobs finish: the budget has room again.
		j := ts.leaseOne("b")
		ts.do("POST", "/v1/jobs/"+j.ID+"/complete", map[string]any{"token": j.Lease.Token}).ok(t, http.StatusOK, nil)
		ts.do("DELETE", "/v1/jobs/"+last.ID, nil).ok(t, http.StatusOK, nil)
		require.Eventually(t, func() bool {
			return ts.do("POST", "/v1/queues/a/jobs", spool.EnqueueRequest{Type: "t"}).code == http.StatusAccepted
		}, 10*time.Second, 20*time.Millisecond)
	})
}

// The payload bytes of the jobs not yet finished have a budget too.
func TestBudgetPayloadBytes(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, store func(*server.Config)) {
		ts := newTestServer(t, store, func(c *server.Config) { c.MaxPayloadStored = 100 })
		pad := func(n int) spool.EnqueueRequest {
			return spool.EnqueueRequest{Type: "t", Payload: []byte(`{"p":"` + strings.Repeat("x", n-8) + `"}`)}
		}
		first := ts.enqueue("q", pad(60))
		r := ts.do("POST", "/v1/queues/q/jobs", pad(60))
		e := r.fails(t, http.StatusServiceUnavailable, spool.CodeStorageFull)
		require.Contains(t, e.Message, "hold 60 payload bytes, and the server's budget is 100")
		require.NotEmpty(t, r.h.Get("Retry-After"))
		ts.enqueue("q", pad(40))
		var list spool.QueuesResponse
		ts.do("GET", "/v1/queues", nil).ok(t, http.StatusOK, &list)
		require.Equal(t, spool.BudgetUse{Used: 100, Limit: 100}, list.Budget.PayloadBytes)

		j := ts.leaseOne("q")
		require.Equal(t, first.ID, j.ID)
		ts.do("POST", "/v1/jobs/"+j.ID+"/complete", map[string]any{"token": j.Lease.Token}).ok(t, http.StatusOK, nil)
		require.Eventually(t, func() bool {
			return ts.do("POST", "/v1/queues/q/jobs", pad(60)).code == http.StatusAccepted
		}, 10*time.Second, 20*time.Millisecond, "room again once a job finished")
	})
}
