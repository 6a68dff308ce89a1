package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/server"
)

// newServer runs a real Spool server in-process on a temporary data
// directory and returns a client for it.
func newServer(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	c, _ := newServerWith(t, serverSetup{}, opts...)
	return c
}

// serverSetup adjusts the in-process server of a test.
type serverSetup struct {
	// wrap, if set, wraps the server's handler (to inject failures).
	wrap func(http.Handler) http.Handler
	// cfg, if set, adjusts the server's config.
	cfg func(*server.Config)
}

// newServerWith is newServer with a setup; it also returns the server.
func newServerWith(t testing.TB, setup serverSetup, opts ...client.Option) (*client.Client, *server.Server) {
	t.Helper()
	cfg := server.Config{DataDir: t.TempDir()}
	if setup.cfg != nil {
		setup.cfg(&cfg)
	}
	srv, err := server.New(context.Background(), cfg)
	require.NoError(t, err)
	h := srv.Handler()
	if setup.wrap != nil {
		h = setup.wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Drain() // end long-polls so the listener closes at once
		ts.Close()
		require.NoError(t, srv.Close())
	})
	c, err := client.New(ts.URL, opts...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c, srv
}

func dur(d time.Duration) *spool.Duration { v := spool.Duration(d); return &v }

func TestProducerAndWorkerFlow(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()

	job, existing, err := c.Enqueue(ctx, "emails", spool.EnqueueRequest{
		Type:           "welcome",
		Payload:        json.RawMessage(`{"to":"ada@example.com"}`),
		IdempotencyKey: "welcome-ada",
		Tags:           []string{"signup"},
	})
	require.NoError(t, err)
	require.False(t, existing)
	require.Equal(t, spool.StateReady, job.State)
	require.Equal(t, "emails", job.Queue)
	require.JSONEq(t, `{"to":"ada@example.com"}`, string(job.Payload))

	again, existing, err := c.Enqueue(ctx, "emails", spool.EnqueueRequest{Type: "welcome", IdempotencyKey: "welcome-ada"})
	require.NoError(t, err)
	require.True(t, existing, "a repeated idempotency key returns the original job")
	require.Equal(t, job.ID, again.ID)

	got, err := c.Get(ctx, job.ID, 0)
	require.NoError(t, err)
	require.Equal(t, job.ID, got.ID)

	leased, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"emails"}, Max: 5, Wait: dur(time.Second), Worker: "test-worker"})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	lj := leased[0]
	require.Equal(t, job.ID, lj.ID)
	require.NotNil(t, lj.Lease)
	require.NotEmpty(t, lj.Lease.Token)
	require.Equal(t, spool.StateActive, lj.State)
	require.Equal(t, 1, lj.Attempt)

	hb, err := c.Heartbeat(ctx, lj.ID, spool.HeartbeatRequest{Token: lj.Lease.Token, Extend: dur(time.Minute),
		Progress: &spool.ProgressUpdate{Percent: 50, Message: "half way"}})
	require.NoError(t, err)
	require.False(t, hb.CancelRequested)
	require.Equal(t, spool.StateActive, hb.State)

	// A long-poll on the job returns as soon as it finishes.
	waited := make(chan *spool.Job, 1)
	go func() {
		j, err := c.Get(ctx, job.ID, 10*time.Second)
		if err != nil {
			t.Errorf("Get with wait: %v", err)
		}
		waited <- j
	}()

	done, err := c.Complete(ctx, lj.ID, spool.CompleteRequest{Token: lj.Lease.Token, Result: json.RawMessage(`{"sent":true}`)})
	require.NoError(t, err)
	require.Equal(t, spool.StateSucceeded, done.State)

	select {
	case j := <-waited:
		require.NotNil(t, j)
		require.Equal(t, spool.StateSucceeded, j.State)
		require.JSONEq(t, `{"sent":true}`, string(j.Result))
	case <-time.After(10 * time.Second):
		t.Fatal("Get with wait did not return after the job completed")
	}

	// The token is spent: a second complete is a lost lease.
	_, err = c.Complete(ctx, lj.ID, spool.CompleteRequest{Token: lj.Lease.Token})
	require.ErrorIs(t, err, spool.ErrLeaseLost)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, http.StatusConflict, ce.Status)
	require.Equal(t, spool.CodeLeaseLost, ce.Code)
	require.NotEmpty(t, ce.Message)
}

func TestEmptyLease(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	jobs, err := c.Lease(context.Background(), spool.LeaseRequest{Queues: []string{"nothing-here"}})
	require.NoError(t, err)
	require.NotNil(t, jobs)
	require.Empty(t, jobs)
}

// EnqueueBatchIDs stores the jobs as EnqueueBatch does and returns their
// ids; a server that ignores the preference is an error, not empty ids.
func TestEnqueueBatchIDs(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()

	reqs := []spool.EnqueueRequest{
		{Type: "a", Payload: json.RawMessage(`{"to":"x@example.com"}`), IdempotencyKey: "k1"},
		{Type: "b", Delay: dur(time.Hour)},
	}
	ids, err := c.EnqueueBatchIDs(ctx, "ids", reqs)
	require.NoError(t, err)
	require.Len(t, ids, 2)
	a, err := c.Get(ctx, ids[0], 0)
	require.NoError(t, err)
	require.Equal(t, "a", a.Type)
	require.JSONEq(t, `{"to":"x@example.com"}`, string(a.Payload))
	b, err := c.Get(ctx, ids[1], 0)
	require.NoError(t, err)
	require.Equal(t, spool.StateScheduled, b.State)

	again, err := c.EnqueueBatchIDs(ctx, "ids", reqs[:1])
	require.NoError(t, err)
	require.Equal(t, ids[:1], again, "an idempotent repeat names the earlier job")

	_, err = c.EnqueueBatchIDs(ctx, "", reqs)
	require.ErrorContains(t, err, "empty queue name")
	_, err = c.EnqueueBatchIDs(ctx, "ids", []spool.EnqueueRequest{{Type: ""}})
	require.ErrorIs(t, err, spool.ErrInvalid)

	ignoring, _ := newServerWith(t, serverSetup{wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("Prefer")
			h.ServeHTTP(w, r)
		})
	}})
	_, err = ignoring.EnqueueBatchIDs(ctx, "ids", reqs)
	require.ErrorContains(t, err, "answered 0 ids for 2 jobs")
}

func TestBatchFailCancelRetry(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()

	jobs, err := c.EnqueueBatch(ctx, "batch", []spool.EnqueueRequest{
		{Type: "a", MaxAttempts: 1},
		{Type: "b", Delay: dur(time.Hour)},
	})
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	require.Equal(t, "a", jobs[0].Type)
	require.Equal(t, spool.StateReady, jobs[0].State)
	require.Equal(t, spool.StateScheduled, jobs[1].State)

	leased, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"batch"}, Max: 10})
	require.NoError(t, err)
	require.Len(t, leased, 1, "only the ready job is leased")
	failed, err := c.Fail(ctx, leased[0].ID, spool.FailRequest{Token: leased[0].Lease.Token, Error: "boom"})
	require.NoError(t, err)
	require.Equal(t, spool.StateDead, failed.State, "one attempt allowed")
	require.Len(t, failed.Errors, 1)
	require.Equal(t, "boom", failed.Errors[0].Error)

	retried, err := c.Retry(ctx, failed.ID)
	require.NoError(t, err)
	require.Equal(t, spool.StateReady, retried.State)

	cancelled, err := c.Cancel(ctx, jobs[1].ID)
	require.NoError(t, err)
	require.Equal(t, spool.StateCancelled, cancelled.State)
	_, err = c.Cancel(ctx, jobs[1].ID)
	require.ErrorIs(t, err, spool.ErrConflict)

	page, err := c.ListJobs(ctx, "batch", client.ListJobsOptions{State: spool.StateCancelled})
	require.NoError(t, err)
	require.Len(t, page.Jobs, 1)
	require.Equal(t, jobs[1].ID, page.Jobs[0].ID)

	results, err := c.Ack(ctx, []spool.Ack{{ID: jobs[0].ID, Token: "stale", Outcome: spool.OutcomeComplete}})
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.NotNil(t, results[0].Error)
	require.Equal(t, spool.CodeLeaseLost, results[0].Error.Code)
}

func TestQueues(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()

	_, err := c.Queue(ctx, "never-used")
	require.ErrorIs(t, err, spool.ErrNotFound)

	for i := 0; i < 3; i++ {
		_, _, err := c.Enqueue(ctx, "q1", spool.EnqueueRequest{Type: "t"})
		require.NoError(t, err)
	}
	_, _, err = c.Enqueue(ctx, "q2", spool.EnqueueRequest{Type: "t", Delay: dur(time.Hour)})
	require.NoError(t, err)

	qs, err := c.Queues(ctx)
	require.NoError(t, err)
	require.Len(t, qs, 2)
	require.Equal(t, "q1", qs[0].Name)
	require.Equal(t, int64(3), qs[0].Counts[spool.StateReady])
	require.Equal(t, int64(3), qs[0].Depth)
	require.Equal(t, int64(1), qs[1].Counts[spool.StateScheduled])

	q, err := c.Queue(ctx, "q1")
	require.NoError(t, err)
	require.Equal(t, int64(3), q.Depth)
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()

	one := int64(1)
	info, err := c.UpdateQueue(ctx, "tiny", spool.QueueConfig{MaxDepth: &one})
	require.NoError(t, err)
	require.Equal(t, int64(1), *info.Config.MaxDepth)

	_, _, err = c.Enqueue(ctx, "tiny", spool.EnqueueRequest{Type: "t"})
	require.NoError(t, err)
	// A full queue is retried until the context ends.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, _, err = c.Enqueue(short, "tiny", spool.EnqueueRequest{Type: "t"})
	require.ErrorIs(t, err, spool.ErrQueueFull)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, http.StatusServiceUnavailable, ce.Status)
	require.Equal(t, spool.CodeQueueFull, ce.Code)
	require.Positive(t, ce.RetryAfter, "a full queue says when to retry")
	require.True(t, ce.Temporary())
	require.Contains(t, ce.Error(), "retry after")

	q, err := c.Queue(ctx, "tiny")
	require.NoError(t, err)
	require.Equal(t, int64(1), q.Depth, "nothing partial is stored")
}

func TestBadInputIsAnswered(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"bad queue name", func() error {
			_, _, err := c.Enqueue(ctx, "Bad Name", spool.EnqueueRequest{Type: "t"})
			return err
		}, spool.ErrInvalid},
		{"missing type", func() error {
			_, _, err := c.Enqueue(ctx, "q", spool.EnqueueRequest{})
			return err
		}, spool.ErrInvalid},
		{"unknown job", func() error {
			_, err := c.Get(ctx, "0190a7e4-8c1e-7c3a-9d52-5b1f0e2a9c11", 0)
			return err
		}, spool.ErrNotFound},
		{"empty lease queues", func() error {
			_, err := c.Lease(ctx, spool.LeaseRequest{})
			return err
		}, spool.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.ErrorIs(t, err, tt.want)
			var ce *client.Error
			require.ErrorAs(t, err, &ce)
			require.NotEmpty(t, ce.Code)
			require.NotEmpty(t, ce.Message)
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "127.0.0.1:7077", "ftp://host", "http://", "::"} {
		_, err := client.New(bad)
		require.Error(t, err, "New(%q)", bad)
	}
	_, err := client.New("http://x", client.WithHTTPClient(nil))
	require.Error(t, err)
	c, err := client.New("http://127.0.0.1:7077/prefix/")
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:7077/prefix", c.URL())
}

// slowServer answers every request after delay, counting new connections.
func slowServer(t *testing.T, delay time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"queues":[]}`))
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, &conns
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	ts, _ := slowServer(t, 300*time.Millisecond)
	c, err := client.New(ts.URL, client.WithTimeout(50*time.Millisecond))
	require.NoError(t, err)

	// No deadline on the context: the default timeout applies.
	_, err = c.Queues(context.Background())
	var te *client.TransportError
	require.ErrorAs(t, err, &te)
	require.True(t, te.Timeout())
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// The caller's deadline wins over the default timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Queues(ctx)
	require.NoError(t, err)
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	ts, conns := slowServer(t, 0)
	c, err := client.New(ts.URL)
	require.NoError(t, err)
	for i := 0; i < 20; i++ {
		_, err := c.Queues(context.Background())
		require.NoError(t, err)
	}
	require.Equal(t, int64(1), conns.Load(), "sequential calls reuse one connection")
}

func TestTransportError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	var slept []time.Duration
	c, err := client.New("http://"+addr, client.WithSleep(func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}))
	require.NoError(t, err)
	_, err = c.Queues(context.Background())
	require.Len(t, slept, client.DefaultRetryPolicy.MaxRetries, "a refused connection is retried")
	var te *client.TransportError
	require.ErrorAs(t, err, &te)
	var ce *client.Error
	require.False(t, errors.As(err, &ce))
}
