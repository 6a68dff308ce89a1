package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

// sseEvent is one event of a stream as a client parses it.
type sseEvent struct {
	id, name, data string
}

// sseReader reads a text/event-stream.
type sseReader struct {
	t    *testing.T
	body io.ReadCloser
	sc   *bufio.Scanner
}

// openEvents starts GET /v1/events?query with optional Last-Event-ID, and
// returns once the server has answered (the stream's position is fixed).
func (ts *testServer) openEvents(query, lastID string) *sseReader {
	ts.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", ts.url+"/v1/events?"+query, nil)
	require.NoError(ts.t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := ts.hc.Do(req)
	require.NoError(ts.t, err)
	ts.t.Cleanup(func() { res.Body.Close() })
	require.Equal(ts.t, http.StatusOK, res.StatusCode)
	require.Equal(ts.t, "text/event-stream", res.Header.Get("Content-Type"))
	return &sseReader{t: ts.t, body: res.Body, sc: bufio.NewScanner(res.Body)}
}

// next returns the next event (comments skipped), or ok=false at the end
// of the stream. A deadline guards against a stream that stalls.
func (r *sseReader) next() (ev sseEvent, ok bool) {
	r.t.Helper()
	timer := time.AfterFunc(10*time.Second, func() { r.body.Close() })
	defer timer.Stop()
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if ev.name != "" {
				return ev, true
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		default:
			r.t.Fatalf("unexpected line in the stream: %q", line)
		}
	}
	return ev, false
}

func (r *sseReader) job() (sseEvent, spool.JobEvent) {
	r.t.Helper()
	ev, ok := r.next()
	require.True(r.t, ok, "the stream ended")
	require.Equal(r.t, spool.EventJob, ev.name, "data: %s", ev.data)
	var je spool.JobEvent
	require.NoError(r.t, json.Unmarshal([]byte(ev.data), &je))
	require.Equal(r.t, strconv.FormatUint(je.EventID, 10), ev.id)
	return ev, je
}

func TestEventsStreamAJobsLifeAndResume(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	stream := ts.openEvents("queue=q&stats=0", "")

	ts.enqueue("other", spool.EnqueueRequest{Type: "t"}) // filtered out
	job := ts.enqueue("q", spool.EnqueueRequest{Type: "report"})
	leased := ts.leaseOne("q")
	ts.do("POST", "/v1/jobs/"+job.ID+"/complete", spool.CompleteRequest{Token: leased.Lease.Token}).ok(t, http.StatusOK, nil)

	var ids []string
	var prev uint64
	for _, want := range []spool.State{spool.StateReady, spool.StateActive, spool.StateSucceeded} {
		ev, je := stream.job()
		require.Equal(t, job.ID, je.ID)
		require.Equal(t, "q", je.Queue)
		require.Equal(t, "report", je.Type)
		require.Equal(t, want, je.State)
		require.Greater(t, je.EventID, prev, "ids increase")
		prev = je.EventID
		ids = append(ids, ev.id)
	}

	// Resume after the first event: the rest of the life, in order.
	resumed := ts.openEvents("job="+job.ID+"&stats=0", ids[0])
	for _, want := range []string{ids[1], ids[2]} {
		ev, _ := resumed.job()
		require.Equal(t, want, ev.id)
	}

	// An id the server never gave (a restart): a missed event first.
	missed := ts.openEvents("stats=0", "999999")
	ev, ok := missed.next()
	require.True(t, ok)
	require.Equal(t, spool.EventMissed, ev.name)
	var me spool.MissedEvent
	require.NoError(t, json.Unmarshal([]byte(ev.data), &me))
	require.EqualValues(t, 999999, me.LastEventID)

	// Stopping the server ends every stream.
	ts.s.Drain()
	_, ok = stream.next()
	require.False(t, ok)
	_, ok = resumed.next()
	require.False(t, ok)
}

func TestEventsQueueSnapshots(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	stream := ts.openEvents("queue=q&stats=1s", "")
	ev, ok := stream.next()
	require.True(t, ok)
	require.Equal(t, spool.EventQueue, ev.name)
	require.Empty(t, ev.id, "snapshots have no id")
	var qi spool.QueueInfo
	require.NoError(t, json.Unmarshal([]byte(ev.data), &qi))
	require.Equal(t, "q", qi.Name)
	require.EqualValues(t, 1, qi.Depth)
	ev, ok = stream.next() // the next period
	require.True(t, ok)
	require.Equal(t, spool.EventQueue, ev.name)
}

func TestEventsBadRequests(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.do("GET", "/v1/events?queue=Bad", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("GET", "/v1/events?job=nope", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("GET", "/v1/events?stats=10ms", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("GET", "/v1/events?other=1", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("GET", "/v1/events", nil, "Last-Event-ID", "x").fails(t, http.StatusBadRequest, spool.CodeInvalid)
}
