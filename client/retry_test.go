package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// sleeper records the waits between retries instead of waiting; then, if
// set, runs on each wait.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	then  func(n int)
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	n := len(s.waits)
	s.mu.Unlock()
	if s.then != nil {
		s.then(n)
	}
	return ctx.Err()
}

func (s *sleeper) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// failAfterServing wraps a server so that the first n requests matching
// match reach the real server, which acts on them, but their answer is
// replaced by status with Retry-After: the client cannot tell the request
// did its work. With before set, the failure is answered before the
// server sees the request instead. bodies and keys record each matching
// request's body and Idempotency-Key header.
type failAfterServing struct {
	match      func(*http.Request) bool
	n          atomic.Int64
	status     int
	retryAfter string
	before     bool
	mu         sync.Mutex
	bodies     []string
	keys       []string
}

func (f *failAfterServing) tries() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.keys)
}

func (f *failAfterServing) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.match(r) {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.bodies = append(f.bodies, string(body))
		f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
		f.mu.Unlock()
		if f.n.Add(-1) < 0 {
			h.ServeHTTP(w, r)
			return
		}
		if !f.before {
			h.ServeHTTP(httptest.NewRecorder(), r) // the server acts; the answer is lost
		}
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"injected failure"}}`))
	})
}

func isEnqueue(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/jobs")
}

// A 503 after the server stored the job: the retry sends the same
// idempotency key, so exactly one job results, and the Retry-After is
// waited each time.
func TestEnqueueRetryReusesIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := &failAfterServing{match: isEnqueue, status: http.StatusServiceUnavailable, retryAfter: "7"}
	f.n.Store(2)
	var s sleeper
	c, _ := newServerWith(t, serverSetup{wrap: f.wrap}, client.WithSleep(s.sleep), client.WithRand(func() float64 { return 0 }))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	job, existing, err := c.Enqueue(ctx, "reports", spool.EnqueueRequest{Type: "build", Payload: json.RawMessage(`{"n":1}`)})
	require.NoError(t, err)
	require.False(t, existing, "the key was made up by the client: its own earlier try is no earlier job")
	require.Equal(t, []time.Duration{5 * time.Second, 5 * time.Second}, s.recorded(), "Retry-After (7s) is a hint, capped by the policy's Max")

	f.mu.Lock()
	keys, bodies := f.keys, f.bodies
	f.mu.Unlock()
	require.Len(t, keys, 3, "two failed tries and the one that got through")
	require.NotEmpty(t, keys[0])
	for i := range keys {
		require.Equal(t, keys[0], keys[i], "one idempotency key across the retries")
		var req spool.EnqueueRequest
		require.NoError(t, json.Unmarshal([]byte(bodies[i]), &req))
		require.Equal(t, keys[0], req.IdempotencyKey)
	}
	require.Equal(t, keys[0], job.IdempotencyKey)

	page, err := c.ListJobs(ctx, "reports", client.ListJobsOptions{})
	require.NoError(t, err)
	require.Len(t, page.Jobs, 1, "exactly one job, although the server stored it on the first try")
	require.Equal(t, job.ID, page.Jobs[0].ID)

	// A key of the caller's own is kept and reused the same way.
	f.n.Store(1)
	job2, _, err := c.Enqueue(ctx, "reports", spool.EnqueueRequest{Type: "build", IdempotencyKey: "mine"})
	require.NoError(t, err)
	require.Equal(t, "mine", job2.IdempotencyKey)
	page, err = c.ListJobs(ctx, "reports", client.ListJobsOptions{})
	require.NoError(t, err)
	require.Len(t, page.Jobs, 2)
}

// A batch retried after the server stored it returns the same jobs.
func TestEnqueueBatchRetryStoresOnce(t *testing.T) {
	t.Parallel()
	f := &failAfterServing{match: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/jobs:batch") },
		status: http.StatusBadGateway}
	f.n.Store(1)
	var s sleeper
	c, _ := newServerWith(t, serverSetup{wrap: f.wrap}, client.WithSleep(s.sleep))
	ctx := context.Background()
	jobs, err := c.EnqueueBatch(ctx, "b", []spool.EnqueueRequest{{Type: "a"}, {Type: "b", IdempotencyKey: "own"}})
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	require.Len(t, s.recorded(), 1)
	require.Equal(t, 2, f.tries())
	require.Equal(t, f.keys[0], f.keys[1])
	q, err := c.Queue(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, int64(2), q.Depth, "the retried batch stored nothing twice")

	// The same for a batch answered with ids only.
	f.n.Store(1)
	ids, err := c.EnqueueBatchIDs(ctx, "b", []spool.EnqueueRequest{{Type: "c"}, {Type: "d"}})
	require.NoError(t, err)
	require.Len(t, ids, 2)
	require.Equal(t, 4, f.tries())
	require.Equal(t, f.keys[2], f.keys[3])
	require.NotEqual(t, f.keys[0], f.keys[2], "a new batch, a new key")
	q, err = c.Queue(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, int64(4), q.Depth, "the retried batch stored nothing twice")
	for i, typ := range []string{"c", "d"} {
		j, err := c.Get(ctx, ids[i], 0)
		require.NoError(t, err)
		require.Equal(t, typ, j.Type)
	}
}

// A full queue: Enqueue waits the server's Retry-After, room is made
// meanwhile, and the retry gets in.
func TestEnqueueWaitsForRoomInFullQueue(t *testing.T) {
	t.Parallel()
	var s sleeper
	c := newServer(t, client.WithSleep(s.sleep), client.WithRand(func() float64 { return 0 }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	_, err := c.UpdateQueue(ctx, "tiny", spool.QueueConfig{MaxDepth: ptr(int64(1))})
	require.NoError(t, err)
	first, err := c.Push(ctx, "tiny", "t", nil)
	require.NoError(t, err)

	// While the client waits, a worker finishes the first job.
	s.then = func(n int) {
		if n != 1 {
			return
		}
		jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"tiny"}})
		if err == nil && len(jobs) == 1 {
			_, err = c.Complete(ctx, jobs[0].ID, spool.CompleteRequest{Token: jobs[0].Lease.Token})
		}
		if err != nil {
			t.Errorf("freeing room: %v", err)
		}
	}
	second, err := c.Push(ctx, "tiny", "t", nil)
	require.NoError(t, err)
	require.NotEqual(t, first.ID, second.ID)
	waits := s.recorded()
	require.Len(t, waits, 1)
	require.Equal(t, client.DefaultRetryPolicy.Max, waits[0], "the server's Retry-After (60s when nothing drained yet), capped by the policy's Max")
	q, err := c.Queue(ctx, "tiny")
	require.NoError(t, err)
	require.Equal(t, int64(1), q.Depth)
	require.Equal(t, int64(1), q.Counts[spool.StateSucceeded])
}

// countStatus counts the answers of one status a server gives.
type countStatus struct {
	status int
	n      atomic.Int64
}

func (c *countStatus) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.code == c.status {
			c.n.Add(1)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// A full queue is retried until the context ends, whatever the server's
// Retry-After (60s here, more than the deadline): the error then carries
// the server's Retry-After.
func TestFullQueueRetriesUntilTheContextEnds(t *testing.T) {
	t.Parallel()
	full := &countStatus{status: http.StatusServiceUnavailable}
	c, _ := newServerWith(t, serverSetup{wrap: full.wrap},
		client.WithRetryPolicy(client.RetryPolicy{MaxRetries: 1, Base: 10 * time.Millisecond, Max: 40 * time.Millisecond}))
	_, err := c.UpdateQueue(context.Background(), "tiny", spool.QueueConfig{MaxDepth: ptr(int64(1))})
	require.NoError(t, err)
	_, err = c.Push(context.Background(), "tiny", "t", nil)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Push(ctx, "tiny", "t", nil)
	require.ErrorIs(t, err, spool.ErrQueueFull)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, time.Minute, ce.RetryAfter, "the server's Retry-After comes with the error")
	require.GreaterOrEqual(t, time.Since(start), 350*time.Millisecond, "it kept trying until the context ended")
	require.Greater(t, full.n.Load(), int64(2), "more tries than MaxRetries allows other failures")
}

// A queue that frees room a while later: Push waits for it and stores one
// job.
func TestPushWaitsForRoomThenStoresOnce(t *testing.T) {
	t.Parallel()
	full := &countStatus{status: http.StatusServiceUnavailable}
	c, _ := newServerWith(t, serverSetup{wrap: full.wrap},
		client.WithRetryPolicy(client.RetryPolicy{MaxRetries: 2, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.UpdateQueue(ctx, "tiny", spool.QueueConfig{MaxDepth: ptr(int64(1))})
	require.NoError(t, err)
	first, err := c.Push(ctx, "tiny", "first", nil)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := c.Push(ctx, "tiny", "second", nil)
		done <- err
	}()
	// Once the queue has refused it more times than MaxRetries, a worker
	// frees the room.
	deadline := time.Now().Add(20 * time.Second)
	for full.n.Load() < 5 {
		require.True(t, time.Now().Before(deadline), "Push stopped trying")
		time.Sleep(5 * time.Millisecond)
	}
	_, err = c.Cancel(ctx, first.ID)
	require.NoError(t, err)
	require.NoError(t, <-done)

	var seconds int
	for j, err := range c.Jobs(ctx, "tiny", client.ListJobsOptions{Type: "second"}) {
		require.NoError(t, err)
		require.Equal(t, "second", j.Type)
		seconds++
	}
	require.Equal(t, 1, seconds, "one job stored")
}

// Backoff without Retry-After: capped exponential, full jitter.
func TestRetryBackoffIsCappedExponential(t *testing.T) {
	t.Parallel()
	f := &failAfterServing{match: func(r *http.Request) bool { return r.URL.Path == "/v1/queues" },
		status: http.StatusServiceUnavailable}
	f.n.Store(100)
	var s sleeper
	c, _ := newServerWith(t, serverSetup{wrap: f.wrap},
		client.WithSleep(s.sleep), client.WithRand(func() float64 { return 0.5 }),
		client.WithRetryPolicy(client.RetryPolicy{MaxRetries: 5, Base: 100 * time.Millisecond, Max: 300 * time.Millisecond}))
	_, err := c.Queues(context.Background())
	require.ErrorIs(t, err, spool.ErrUnavailable, "the last try's error")
	ms := time.Millisecond
	require.Equal(t, []time.Duration{50 * ms, 100 * ms, 150 * ms, 150 * ms, 150 * ms}, s.recorded())
	require.Equal(t, 6, f.tries(), "one try and five retries")
}

// Calls that are not safe to repeat are retried only when the server
// surely did not act.
func TestUnsafeCallsRetryOnlyWhenNothingHappened(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		status int
		before bool
		tries  int
	}{
		{"503 unavailable may have completed", http.StatusServiceUnavailable, false, 1},
		{"504 may have completed", http.StatusGatewayTimeout, false, 1},
		{"429 did nothing", http.StatusTooManyRequests, true, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &failAfterServing{match: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/complete") },
				status: tt.status, before: tt.before}
			f.n.Store(1)
			var s sleeper
			c, _ := newServerWith(t, serverSetup{wrap: f.wrap}, client.WithSleep(s.sleep))
			ctx := context.Background()
			_, err := c.Push(ctx, "q", "t", nil)
			require.NoError(t, err)
			jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}})
			require.NoError(t, err)
			_, err = c.Complete(ctx, jobs[0].ID, spool.CompleteRequest{Token: jobs[0].Lease.Token})
			require.Equal(t, tt.tries, f.tries())
			if tt.tries == 1 {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			got, err := c.Get(ctx, jobs[0].ID, 0)
			require.NoError(t, err)
			require.Equal(t, spool.StateSucceeded, got.State, "completed once, either way")
		})
	}
}

// A connection that breaks mid-request is retried for a read, not for a
// lease.
func TestBrokenConnectionRetry(t *testing.T) {
	t.Parallel()
	var breaks atomic.Int64
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if breaks.Add(-1) >= 0 {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	var s sleeper
	c, _ := newServerWith(t, serverSetup{wrap: wrap}, client.WithSleep(s.sleep))
	ctx := context.Background()
	breaks.Store(1)
	_, err := c.Queues(ctx)
	require.NoError(t, err)
	require.Len(t, s.recorded(), 1)

	breaks.Store(1)
	_, err = c.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}})
	var te *client.TransportError
	require.ErrorAs(t, err, &te, "a lease that may have been granted is not asked again")
	require.Len(t, s.recorded(), 1)
}

// With retries off, nothing is retried and no key is made up.
func TestNoRetry(t *testing.T) {
	t.Parallel()
	f := &failAfterServing{match: isEnqueue, status: http.StatusServiceUnavailable, retryAfter: "1"}
	f.n.Store(1)
	var s sleeper
	c, _ := newServerWith(t, serverSetup{wrap: f.wrap}, client.WithSleep(s.sleep), client.WithRetryPolicy(client.NoRetry))
	_, err := c.Push(context.Background(), "q", "t", nil)
	require.ErrorIs(t, err, spool.ErrUnavailable)
	require.Empty(t, s.recorded())
	job, err := c.Push(context.Background(), "q", "t", nil)
	require.NoError(t, err)
	require.Empty(t, job.IdempotencyKey)
	require.Empty(t, f.keys[0])

	_, err = client.New("http://x", client.WithRetryPolicy(client.RetryPolicy{MaxRetries: -1}))
	require.Error(t, err)
	_, err = client.New("http://x", client.WithRetryPolicy(client.RetryPolicy{MaxRetries: 1, Base: time.Second, Max: time.Millisecond}))
	require.Error(t, err)
}

func ptr[T any](v T) *T { return &v }

// FailWhenFull: a full queue fails at the first answer.
func TestFailWhenFull(t *testing.T) {
	t.Parallel()
	full := &countStatus{status: http.StatusServiceUnavailable}
	p := client.DefaultRetryPolicy
	p.FailWhenFull = true
	c, _ := newServerWith(t, serverSetup{wrap: full.wrap}, client.WithRetryPolicy(p))
	_, err := c.UpdateQueue(context.Background(), "tiny", spool.QueueConfig{MaxDepth: ptr(int64(1))})
	require.NoError(t, err)
	_, err = c.Push(context.Background(), "tiny", "t", nil)
	require.NoError(t, err)
	_, err = c.Push(context.Background(), "tiny", "t", nil)
	require.ErrorIs(t, err, spool.ErrQueueFull)
	require.EqualValues(t, 1, full.n.Load())
}
