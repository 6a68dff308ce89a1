package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

// A waiting lease is answered by an enqueue, not at the end of its wait.
func TestLongPollLeaseWokenByEnqueue(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	ts := newWrappedServer(t, signalOn("POST", "/v1/leases", entered))

	type result struct {
		r       *resp
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		r, err := ts.send("POST", "/v1/leases", `{"queues":["q"],"wait":"5m","max":5}`)
		done <- result{r, err, time.Since(start)}
	}()
	<-entered
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	select {
	case res := <-done:
		require.NoError(t, res.err)
		var out spool.JobsResponse
		res.r.ok(t, http.StatusOK, &out)
		require.Len(t, out.Jobs, 1)
		require.Equal(t, j.ID, out.Jobs[0].ID)
		require.Less(t, res.elapsed, time.Minute)
	case <-time.After(time.Minute):
		t.Fatal("the waiting lease was not woken by the enqueue")
	}
}

func TestLeaseEmptyWaitAndQueueOrder(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	// Nothing ready: an empty list (not null), also after a short wait.
	r := ts.do("POST", "/v1/leases", `{"queues":["a"],"wait":"10ms"}`)
	r.ok(t, http.StatusOK, nil)
	require.JSONEq(t, `{"jobs":[]}`, string(r.body))

	// The first queue is emptied first; max bounds the count.
	b1 := ts.enqueue("b", spool.EnqueueRequest{Type: "b1", Priority: 100})
	a1 := ts.enqueue("a", spool.EnqueueRequest{Type: "a1"})
	a2 := ts.enqueue("a", spool.EnqueueRequest{Type: "a2"})
	jobs := ts.lease(spool.LeaseRequest{Queues: []string{"a", "b"}, Max: 2})
	require.Equal(t, []string{a1.ID, a2.ID}, []string{jobs[0].ID, jobs[1].ID})
	jobs = ts.lease(spool.LeaseRequest{Queues: []string{"a", "b"}, Max: 2})
	require.Len(t, jobs, 1)
	require.Equal(t, b1.ID, jobs[0].ID)
	// With no worker named, the caller's address is recorded.
	require.Contains(t, jobs[0].Worker, "127.0.0.1:")
	require.Equal(t, jobs[0].Worker, ts.get(b1.ID).Worker)
}

func TestPausedQueueHandsOutNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	q := ts.patch("q", spool.QueueConfig{Paused: ptr(true)})
	require.True(t, *q.Config.Paused)
	require.Empty(t, ts.lease(spool.LeaseRequest{Queues: []string{"q"}, Max: 10}))
	// A paused queue still admits jobs.
	ts.enqueue("q", spool.EnqueueRequest{Type: "t"})

	ts.patch("q", spool.QueueConfig{Paused: ptr(false)})
	jobs := ts.lease(spool.LeaseRequest{Queues: []string{"q"}, Max: 10})
	require.Len(t, jobs, 2)
	require.Equal(t, j.ID, jobs[0].ID)
}

func TestHeartbeatExtendsAndRecordsProgress(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	l := ts.lease(spool.LeaseRequest{Queues: []string{"q"}, Lease: dur(10 * time.Second)})[0]

	var hb spool.HeartbeatResponse
	ts.do("POST", "/v1/jobs/"+j.ID+"/heartbeat", spool.HeartbeatRequest{
		Token: l.Lease.Token, Extend: dur(time.Hour), Progress: &spool.ProgressUpdate{Percent: 50, Message: "half way"},
	}).ok(t, http.StatusOK, &hb)
	require.Equal(t, spool.StateActive, hb.State)
	require.False(t, hb.CancelRequested)
	require.NotNil(t, hb.LeaseExpiresAt)
	require.True(t, hb.LeaseExpiresAt.After(l.Lease.ExpiresAt.Add(30*time.Minute)), "extended from %s to %s", l.Lease.ExpiresAt, hb.LeaseExpiresAt)

	got := ts.get(j.ID)
	require.NotNil(t, got.Progress)
	require.Equal(t, 50.0, got.Progress.Percent)
	require.Equal(t, "half way", got.Progress.Message)
	require.True(t, got.LeaseExpiresAt.Equal(*hb.LeaseExpiresAt))
}

// Each ack stands alone: a stale token fails only its own ack.
func TestAcksBatchWithOneStaleToken(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for range 3 {
		ts.enqueue("q", spool.EnqueueRequest{Type: "t", MaxAttempts: 5})
	}
	jobs := ts.lease(spool.LeaseRequest{Queues: []string{"q"}, Max: 3})
	require.Len(t, jobs, 3)

	req := spool.AcksRequest{Acks: []spool.Ack{
		{ID: jobs[0].ID, Token: jobs[0].Lease.Token, Outcome: spool.OutcomeComplete, Result: json.RawMessage(`{"n":0}`)},
		{ID: jobs[1].ID, Token: "not-the-token", Outcome: spool.OutcomeComplete},
		{ID: jobs[2].ID, Token: jobs[2].Lease.Token, Outcome: spool.OutcomeFail, Error: "bad input", Final: true},
	}}
	var out spool.AcksResponse
	ts.do("POST", "/v1/acks", req).ok(t, http.StatusOK, &out)
	require.Len(t, out.Results, 3)
	require.Equal(t, jobs[0].ID, out.Results[0].ID)
	require.Equal(t, spool.StateSucceeded, out.Results[0].State)
	require.Nil(t, out.Results[0].Error)
	require.Equal(t, jobs[1].ID, out.Results[1].ID)
	require.NotNil(t, out.Results[1].Error)
	require.Equal(t, spool.CodeLeaseLost, out.Results[1].Error.Code)
	require.Equal(t, spool.StateDead, out.Results[2].State)

	require.JSONEq(t, `{"n":0}`, string(ts.get(jobs[0].ID).Result))
	require.Equal(t, spool.StateActive, ts.get(jobs[1].ID).State, "the stale ack changed nothing")
	require.Equal(t, "bad input", ts.get(jobs[2].ID).Errors[0].Error)
}

// A batch of acks read with one lookup: an unknown id is not_found on its
// own, and a job acked twice takes the first ack only.
func TestAcksUnknownAndRepeatedJob(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.enqueue("q", spool.EnqueueRequest{Type: "t"})
	j := ts.leaseOne("q")
	req := spool.AcksRequest{Acks: []spool.Ack{
		{ID: "01a20000-0000-7000-8000-000000000000", Token: "x", Outcome: spool.OutcomeComplete},
		{ID: j.ID, Token: j.Lease.Token, Outcome: spool.OutcomeComplete, Result: json.RawMessage(`{"first":true}`)},
		{ID: j.ID, Token: j.Lease.Token, Outcome: spool.OutcomeComplete, Result: json.RawMessage(`{"first":false}`)},
	}}
	var out spool.AcksResponse
	ts.do("POST", "/v1/acks", req).ok(t, http.StatusOK, &out)
	require.Len(t, out.Results, 3)
	require.NotNil(t, out.Results[0].Error)
	require.Equal(t, spool.CodeNotFound, out.Results[0].Error.Code)
	require.Nil(t, out.Results[1].Error)
	require.Equal(t, spool.StateSucceeded, out.Results[1].State)
	require.NotNil(t, out.Results[2].Error, "the second ack finds the job already finished")
	require.JSONEq(t, `{"first":true}`, string(ts.get(j.ID).Result))
}

// A released job is ready again at once, its attempt not counted, and a
// waiting lease gets it.
func TestReleaseHandsJobBack(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	j := ts.enqueue("q", spool.EnqueueRequest{Type: "t", MaxAttempts: 2})
	l := ts.leaseOne("q")
	require.Equal(t, 1, l.Attempt)

	var rel spool.Job
	ts.do("POST", "/v1/jobs/"+j.ID+"/release", spool.ReleaseRequest{Token: l.Lease.Token}).ok(t, http.StatusOK, &rel)
	require.Equal(t, spool.StateReady, rel.State)
	require.Equal(t, 0, rel.Attempt)
	require.Empty(t, rel.Errors)
	require.Nil(t, rel.LeaseExpiresAt)

	// The spent token is refused and changes nothing.
	ts.do("POST", "/v1/jobs/"+j.ID+"/release", spool.ReleaseRequest{Token: l.Lease.Token}).fails(t, http.StatusConflict, spool.CodeLeaseLost)

	again := ts.leaseOne("q")
	require.Equal(t, j.ID, again.ID)
	require.Equal(t, 1, again.Attempt, "the released attempt did not count")

	// Through the batch acks as well.
	var out spool.AcksResponse
	ts.do("POST", "/v1/acks", spool.AcksRequest{Acks: []spool.Ack{
		{ID: j.ID, Token: again.Lease.Token, Outcome: spool.OutcomeRelease},
	}}).ok(t, http.StatusOK, &out)
	require.Len(t, out.Results, 1)
	require.Nil(t, out.Results[0].Error)
	require.Equal(t, spool.StateReady, out.Results[0].State)
	got := ts.get(j.ID)
	require.Equal(t, 0, got.Attempt)
	require.Equal(t, spool.StateReady, got.State)
}
