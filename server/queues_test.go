package server_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestQueuesListGetPatch(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	r := ts.do("GET", "/v1/queues", nil)
	r.ok(t, http.StatusOK, nil)
	var empty spool.QueuesResponse
	r.ok(t, http.StatusOK, &empty)
	require.Empty(t, empty.Queues)
	require.NotNil(t, empty.Queues)
	ts.do("GET", "/v1/queues/nope", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)

	ts.enqueue("b", spool.EnqueueRequest{Type: "t"})
	ts.enqueue("b", spool.EnqueueRequest{Type: "t"})
	ts.leaseOne("b")
	// PATCH creates a queue never used.
	a := ts.patch("a", spool.QueueConfig{MaxDepth: ptr[int64](10), Retention: dur(time.Hour), MaxAttempts: ptr(3),
		Backoff: &spool.Backoff{Base: spool.Duration(time.Second), Max: spool.Duration(time.Minute)}})
	require.Equal(t, "a", a.Name)
	require.EqualValues(t, 10, *a.Config.MaxDepth)
	require.Equal(t, spool.Duration(time.Hour), *a.Config.Retention)
	require.Equal(t, 3, *a.Config.MaxAttempts)
	require.False(t, *a.Config.Paused, "answers hold every setting in force")
	require.Equal(t, spool.Duration(time.Minute), a.Config.Backoff.Max)

	// Only the fields present change.
	a = ts.patch("a", map[string]any{"paused": true})
	require.True(t, *a.Config.Paused)
	require.EqualValues(t, 10, *a.Config.MaxDepth)

	var list spool.QueuesResponse
	ts.do("GET", "/v1/queues", nil).ok(t, http.StatusOK, &list)
	require.Len(t, list.Queues, 2)
	require.Equal(t, "a", list.Queues[0].Name)
	b := list.Queues[1]
	require.Equal(t, "b", b.Name)
	require.EqualValues(t, 1, b.Counts[spool.StateReady])
	require.EqualValues(t, 1, b.Counts[spool.StateActive])
	require.EqualValues(t, 2, b.Depth)
	require.Greater(t, b.EnqueueRate, 0.0)
	require.Equal(t, b.Counts, ts.queue("b").Counts)
}

func TestListJobsPagination(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var want []string
	for range 5 {
		want = append(want, ts.enqueue("q", spool.EnqueueRequest{Type: "t"}).ID)
	}
	active := ts.leaseOne("q")

	var got []string
	cursor, pages := "", 0
	for {
		path := "/v1/queues/q/jobs?limit=2"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page spool.JobList
		ts.do("GET", path, nil).ok(t, http.StatusOK, &page)
		require.LessOrEqual(t, len(page.Jobs), 2)
		for _, j := range page.Jobs {
			require.Empty(t, j.Payload, "lists carry no payloads")
			got = append(got, j.ID)
		}
		pages++
		require.Less(t, pages, 10, "pagination does not end")
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	require.Equal(t, want, got, "every job once, in creation order")
	require.GreaterOrEqual(t, pages, 3)

	var only spool.JobList
	ts.do("GET", "/v1/queues/q/jobs?state=active", nil).ok(t, http.StatusOK, &only)
	require.Len(t, only.Jobs, 1)
	require.Equal(t, active.ID, only.Jobs[0].ID)

	// A queue never used has no jobs.
	r := ts.do("GET", "/v1/queues/empty/jobs?state=dead&limit=10", nil)
	r.ok(t, http.StatusOK, nil)
	require.JSONEq(t, `{"jobs":[]}`, string(r.body))
}

// GET /v1/queues/{queue}/stats answers the telemetry, with a history when
// asked; bad input is a 400 and an unknown queue a 404.
func TestQueueStats(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.patch("st", map[string]any{"target_wait": "2s"})
	for range 3 {
		ts.enqueue("st", spool.EnqueueRequest{Type: "t"})
	}
	ts.leaseOne("st")

	var st spool.QueueStats
	ts.do("GET", "/v1/queues/st/stats?history=1h", nil).ok(t, http.StatusOK, &st)
	require.Equal(t, "st", st.Queue)
	require.Len(t, st.Windows, 3)
	require.EqualValues(t, 3, st.Windows[0].Arrivals)
	require.EqualValues(t, 1, st.Windows[0].Wait.Count)
	require.EqualValues(t, 1, st.Now.Busy)
	require.EqualValues(t, 3, st.Now.Depth)
	require.Equal(t, spool.Duration(2*time.Second), st.Sizing.TargetWait)
	require.NotNil(t, st.History)
	require.Len(t, st.History.Points, 60)
	require.Equal(t, spool.Duration(time.Minute), st.History.Step)

	var raw map[string]any
	ts.do("GET", "/v1/queues/st/stats", nil).ok(t, http.StatusOK, &raw)
	require.NotContains(t, raw, "history", "no history unless asked")
	w := raw["windows"].([]any)[0].(map[string]any)
	for _, k := range []string{"arrival_rate", "throughput", "wait", "run", "littles_law", "avg_depth"} {
		require.Contains(t, w, k)
	}
	require.Contains(t, raw["sizing"], "offered_load")

	var q spool.QueueInfo
	ts.do("GET", "/v1/queues/st", nil).ok(t, http.StatusOK, &q)
	require.EqualValues(t, 1, q.Busy)
	require.Equal(t, spool.Duration(2*time.Second), *q.Config.TargetWait)

	ts.do("GET", "/v1/queues/st/stats?history=soon", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("GET", "/v1/queues/st/stats?history=72h", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("GET", "/v1/queues/st/stats?window=1m", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("GET", "/v1/queues/nope/stats", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	ts.do("PATCH", "/v1/queues/st", `{"target_wait":"-1s"}`).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("PATCH", "/v1/queues/st", `{"target_wait":"48h"}`).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("GET", "/v1/queues/st", nil).ok(t, http.StatusOK, &q)
	require.Equal(t, spool.Duration(2*time.Second), *q.Config.TargetWait, "a refused patch changes nothing")
}
