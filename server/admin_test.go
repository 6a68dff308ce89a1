package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

// failDead leases the next job of queue (max_attempts 1) and fails it: dead.
func (ts *testServer) failDead(queue string) *spool.Job {
	ts.t.Helper()
	j := ts.leaseOne(queue)
	ts.do("POST", "/v1/jobs/"+j.ID+"/fail", spool.FailRequest{Token: j.Lease.Token, Error: "boom"}).ok(ts.t, http.StatusOK, nil)
	got := ts.get(j.ID)
	require.Equal(ts.t, spool.StateDead, got.State)
	return got
}

func (ts *testServer) bulk(queue, action string, body any) int64 {
	ts.t.Helper()
	var out spool.BulkResponse
	ts.do("POST", "/v1/queues/"+queue+"/jobs:"+action, body).ok(ts.t, http.StatusOK, &out)
	return out.Count
}

func TestDeleteJob(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	active := ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	ts.leaseOne("q")
	ready := ts.enqueue("q", spool.EnqueueRequest{Type: "t", IdempotencyKey: "k"})
	child := ts.enqueue("q", spool.EnqueueRequest{Type: "t", DependsOn: []string{ready.ID}})
	require.Equal(t, spool.StateWaiting, child.State)

	ts.do("POST", "/v1/jobs/"+active.ID+"/delete", nil).fails(t, http.StatusConflict, spool.CodeConflict)
	require.Equal(t, spool.StateActive, ts.get(active.ID).State, "a refused delete changes nothing")

	var out spool.BulkResponse
	ts.do("POST", "/v1/jobs/"+ready.ID+"/delete", nil).ok(t, http.StatusOK, &out)
	require.EqualValues(t, 1, out.Count)
	ts.do("GET", "/v1/jobs/"+ready.ID, nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	ts.do("POST", "/v1/jobs/"+ready.ID+"/delete", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	// Its idempotency key is free again.
	again := ts.enqueue("q", spool.EnqueueRequest{Type: "t", IdempotencyKey: "k"})
	require.NotEqual(t, ready.ID, again.ID)

	// The job that waited for it is cancelled.
	deadline := time.Now().Add(10 * time.Second)
	for ts.get(child.ID).State != spool.StateCancelled {
		require.True(t, time.Now().Before(deadline), "the child of a deleted job is never cancelled")
		time.Sleep(5 * time.Millisecond)
	}

	// Finished jobs go too.
	ts.do("POST", "/v1/jobs/"+child.ID+"/delete", map[string]any{}).ok(t, http.StatusOK, nil)
	ts.do("GET", "/v1/jobs/"+child.ID, nil).fails(t, http.StatusNotFound, spool.CodeNotFound)

	ts.do("POST", "/v1/jobs/nope/delete", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("POST", "/v1/jobs/"+again.ID+"/delete", `{"x":1}`).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	require.Equal(t, spool.StateReady, ts.get(again.ID).State)
}

func TestBulkRetryCancelDelete(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	// Six dead jobs: types a and b, every third tagged vip.
	for i := range 6 {
		req := spool.EnqueueRequest{Type: "a", MaxAttempts: 1, Tags: []string{"x"}}
		if i%2 == 1 {
			req.Type = "b"
		}
		if i%3 == 0 {
			req.Tags = append(req.Tags, "vip")
		}
		ts.enqueue("q", req)
		ts.failDead("q")
	}
	// And one ready job of type a.
	ts.enqueue("q", spool.EnqueueRequest{Type: "a"})

	// Listing by type and tag.
	var page spool.JobList
	ts.do("GET", "/v1/queues/q/jobs?type=a&state=dead", nil).ok(t, http.StatusOK, &page)
	require.Len(t, page.Jobs, 3)
	ts.do("GET", "/v1/queues/q/jobs?tag=vip", nil).ok(t, http.StatusOK, &page)
	require.Len(t, page.Jobs, 2)
	ts.do("GET", "/v1/queues/q/jobs?type=b&tag=vip", nil).ok(t, http.StatusOK, &page)
	require.Len(t, page.Jobs, 1)
	require.Equal(t, "b", page.Jobs[0].Type)

	// A dry run counts and changes nothing.
	var out spool.BulkResponse
	ts.do("POST", "/v1/queues/q/jobs:retry", map[string]any{"type": "a", "dry_run": true}).ok(t, http.StatusOK, &out)
	require.Equal(t, spool.BulkResponse{Count: 3, DryRun: true}, out)
	require.EqualValues(t, 6, ts.queue("q").Counts[spool.StateDead])

	require.EqualValues(t, 3, ts.bulk("q", "retry", map[string]any{"type": "a"}))
	counts := ts.queue("q").Counts
	require.EqualValues(t, 3, counts[spool.StateDead])
	require.EqualValues(t, 4, counts[spool.StateReady])

	// Delete the dead vip job of type b, then every other dead one.
	require.EqualValues(t, 1, ts.bulk("q", "delete", map[string]any{"state": "dead", "tag": "vip"}))
	require.EqualValues(t, 2, ts.bulk("q", "delete", spool.BulkRequest{State: spool.StateDead}))
	require.EqualValues(t, 0, ts.queue("q").Counts[spool.StateDead])

	// Drain: cancel every job not started; an active one keeps running.
	active := ts.leaseOne("q")
	require.EqualValues(t, 3, ts.bulk("q", "cancel", nil))
	counts = ts.queue("q").Counts
	require.EqualValues(t, 3, counts[spool.StateCancelled])
	require.EqualValues(t, 1, counts[spool.StateActive])
	require.False(t, ts.get(active.ID).CancelRequested)
	// Cancelling active jobs is asked for by name.
	require.EqualValues(t, 1, ts.bulk("q", "cancel", map[string]any{"state": "active"}))
	require.True(t, ts.get(active.ID).CancelRequested)

	// Purge: delete every job not active.
	require.EqualValues(t, 3, ts.bulk("q", "delete", map[string]any{}))
	counts = ts.queue("q").Counts
	require.EqualValues(t, 0, counts[spool.StateCancelled])
	require.EqualValues(t, 1, counts[spool.StateActive])
}

// A bulk action over more jobs than one store batch works through all of
// them.
func TestBulkManyJobs(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	const n = 1300
	for i := 0; i < n; i += 650 {
		jobs := make([]spool.EnqueueRequest, 650)
		for k := range jobs {
			jobs[k] = spool.EnqueueRequest{Type: "t"}
		}
		ts.do("POST", "/v1/queues/q/jobs:batch", spool.BatchEnqueueRequest{Jobs: jobs}).ok(t, http.StatusAccepted, nil)
	}
	require.EqualValues(t, n, ts.bulk("q", "cancel", spool.BulkRequest{DryRun: true}))
	require.EqualValues(t, n, ts.bulk("q", "cancel", nil))
	require.EqualValues(t, n, ts.queue("q").Counts[spool.StateCancelled])
	require.EqualValues(t, n, ts.bulk("q", "retry", nil))
	require.EqualValues(t, n, ts.queue("q").Counts[spool.StateReady])
	require.EqualValues(t, n, ts.bulk("q", "delete", nil))
	require.EqualValues(t, 0, ts.queue("q").Depth)
	var page spool.JobList
	ts.do("GET", "/v1/queues/q/jobs", nil).ok(t, http.StatusOK, &page)
	require.Empty(t, page.Jobs)
}

// A bulk retry retries what fits in the queue, then answers queue_full.
func TestBulkRetryQueueFull(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.patch("q", spool.QueueConfig{MaxDepth: ptr[int64](3)})
	for range 3 {
		ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	}
	require.EqualValues(t, 3, ts.bulk("q", "cancel", nil))
	ts.enqueue("q", spool.EnqueueRequest{Type: "t"})

	r := ts.do("POST", "/v1/queues/q/jobs:retry", nil)
	r.fails(t, http.StatusServiceUnavailable, spool.CodeQueueFull)
	require.NotEmpty(t, r.h.Get("Retry-After"))
	counts := ts.queue("q").Counts
	require.EqualValues(t, 3, counts[spool.StateReady], "two retried, as many as fit")
	require.EqualValues(t, 1, counts[spool.StateCancelled])
}

func TestBulkBadInput(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	for _, c := range []struct {
		path string
		body any
	}{
		{"/v1/queues/q/jobs:retry", map[string]any{"state": "ready"}},
		{"/v1/queues/q/jobs:cancel", map[string]any{"state": "dead"}},
		{"/v1/queues/q/jobs:delete", map[string]any{"state": "active"}},
		{"/v1/queues/q/jobs:delete", map[string]any{"state": "bogus"}},
		{"/v1/queues/q/jobs:delete", map[string]any{"queue": "q"}},
		{"/v1/queues/q/jobs:delete", map[string]any{"type": strings.Repeat("t", 300)}},
		{"/v1/queues/q/jobs:delete", map[string]any{"tag": "a\nb"}},
		{"/v1/queues/q/jobs:delete", map[string]any{"dry_run": "yes"}},
		{"/v1/queues/q/jobs:delete", `[]`},
		{"/v1/queues/q/jobs:delete", `{} {}`},
		{"/v1/queues/Bad!/jobs:delete", nil},
		{"/v1/queues/_spool.webhooks/jobs:delete", nil},
	} {
		t.Run(fmt.Sprint(c.path, c.body), func(t *testing.T) {
			ts.do("POST", c.path, c.body).fails(t, http.StatusBadRequest, spool.CodeInvalid)
		})
	}
	for _, q := range []string{"type=" + strings.Repeat("t", 300), "tag=a%00", "state=nope", "owner=me"} {
		ts.do("GET", "/v1/queues/q/jobs?"+q, nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	}
	require.Equal(t, spool.StateReady, ts.get(j.ID).State, "bad input changes nothing")
}

func TestDeleteQueue(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.do("DELETE", "/v1/queues/nope", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	ts.do("DELETE", "/v1/queues/Bad!", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)

	ts.patch("q", spool.QueueConfig{MaxDepth: ptr[int64](50)})
	ts.do("PUT", "/v1/topics/news/subscriptions/q", nil).ok(t, http.StatusOK, nil)
	ts.do("PUT", "/v1/topics/news/subscriptions/other", nil).ok(t, http.StatusOK, nil)
	for range 3 {
		ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	}
	active := ts.leaseOne("q")
	ts.do("DELETE", "/v1/queues/q", nil).fails(t, http.StatusConflict, spool.CodeConflict)
	require.EqualValues(t, 3, ts.queue("q").Depth, "a refused delete changes nothing")

	ts.do("POST", "/v1/jobs/"+active.ID+"/complete", spool.CompleteRequest{Token: active.Lease.Token}).ok(t, http.StatusOK, nil)
	var out spool.BulkResponse
	ts.do("DELETE", "/v1/queues/q", nil).ok(t, http.StatusOK, &out)
	require.EqualValues(t, 3, out.Count)
	ts.do("GET", "/v1/queues/q", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	ts.do("GET", "/v1/jobs/"+active.ID, nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	var list spool.QueuesResponse
	ts.do("GET", "/v1/queues", nil).ok(t, http.StatusOK, &list)
	for _, q := range list.Queues {
		require.NotEqual(t, "q", q.Name)
	}
	// Its subscriptions went with it; others stay.
	var topics spool.TopicsResponse
	ts.do("GET", "/v1/topics", nil).ok(t, http.StatusOK, &topics)
	require.Len(t, topics.Topics, 1)
	require.Equal(t, []string{"other"}, topicQueues(topics.Topics[0]))

	// Used again, it has the defaults.
	ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	require.NotEqualValues(t, 50, *ts.queue("q").Config.MaxDepth)
}

func topicQueues(ti spool.TopicInfo) []string {
	var out []string
	for _, s := range ti.Subscriptions {
		out = append(out, s.Queue)
	}
	return out
}

// A zero backoff delay is refused (400), never silently replaced by the
// default; leaving a member out keeps the default.
func TestZeroBackoffRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	before := ts.patch("q", map[string]any{"backoff": map[string]any{"base": "2s"}})
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/queues/q/jobs", `{"type":"t","backoff":{"base":"0s"}}`},
		{"POST", "/v1/queues/q/jobs", `{"type":"t","backoff":{"base":"1s","max":"0s"}}`},
		{"POST", "/v1/queues/q/jobs:batch", `{"jobs":[{"type":"t","backoff":{"base":"0s"}}]}`},
		{"PATCH", "/v1/queues/q", `{"backoff":{"base":"0s"}}`},
		{"PATCH", "/v1/queues/q", `{"backoff":{"BASE":"3s"}}`},
		{"PATCH", "/v1/queues/q", `{"backoff":{"base":"3s","base":"4s"}}`},
		{"PATCH", "/v1/queues/q", `{"backoff":{"base":"3s","min":"1s"}}`},
	} {
		e := ts.do(c.method, c.path, c.body).fails(t, http.StatusBadRequest, spool.CodeInvalid)
		require.Contains(t, e.Message, "backoff", "%s %s", c.method, c.path)
	}
	after := ts.queue("q")
	require.Equal(t, before.Config.Backoff, after.Config.Backoff, "a refused PATCH changes nothing")
	require.Zero(t, after.Depth, "a refused enqueue stores nothing")

	// Only max: base keeps its value.
	q := ts.patch("q", map[string]any{"backoff": map[string]any{"max": "1m"}})
	require.Equal(t, spool.Backoff{Base: spool.Duration(2 * time.Second), Max: spool.Duration(time.Minute)}, *q.Config.Backoff)
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t", Backoff: &spool.Backoff{Base: spool.Duration(time.Second)}})
	require.Equal(t, spool.Duration(time.Second), j.Backoff.Base)
}
