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
	require.JSONEq(t, `{"queues":[]}`, string(r.body))
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
