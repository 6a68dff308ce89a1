package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/servertest"
	"github.com/spoolq/spool/server"
)

// runWorker starts w.Run in a goroutine and returns a stop function that
// cancels its context and returns Run's error, failing the test if Run
// does not return in time. The test's cleanup stops it too.
func runWorker(t *testing.T, w *client.Worker) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				err = errors.New("Run did not return within 30s of its context ending")
			}
		})
		return err
	}
	t.Cleanup(func() { require.NoError(t, stop()) })
	return stop
}

func newWorker(t *testing.T, c *client.Client, opts client.WorkerOptions) *client.Worker {
	t.Helper()
	w, err := client.NewWorker(c, opts)
	require.NoError(t, err)
	return w
}

// waitDone waits for a job to finish and returns it.
func waitDone(t *testing.T, c *client.Client, id string) *spool.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := c.Wait(ctx, id)
	require.NoError(t, err)
	return j
}

// waitUntil polls the job until cond holds, for up to 30s.
func waitUntil(t *testing.T, c *client.Client, id string, what string, cond func(*spool.Job) bool) *spool.Job {
	t.Helper()
	var last *spool.Job
	require.Eventually(t, func() bool {
		j, err := c.Get(context.Background(), id, 0)
		if err != nil {
			return false
		}
		last = j
		return cond(j)
	}, 30*time.Second, 10*time.Millisecond, "job %s never %s", id, what)
	return last
}

// received fails the test if nothing comes on ch within 30s.
func received[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

// requestCounter wraps a server to count requests by "METHOD /path-kind"
// and to record the lease requests' max.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
	maxes  []int
}

func (rc *requestCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := r.URL.Path
		if i := strings.LastIndex(kind, "/"); strings.HasPrefix(kind, "/v1/jobs/") && i > len("/v1/jobs") {
			kind = "/v1/jobs/{id}" + kind[i:]
		}
		rc.mu.Lock()
		if rc.counts == nil {
			rc.counts = map[string]int{}
		}
		rc.counts[r.Method+" "+kind]++
		rc.mu.Unlock()
		if kind == "/v1/leases" {
			body, _ := io.ReadAll(r.Body)
			var req spool.LeaseRequest
			_ = json.Unmarshal(body, &req)
			rc.mu.Lock()
			rc.maxes = append(rc.maxes, req.Max)
			rc.mu.Unlock()
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		h.ServeHTTP(w, r)
	})
}

func (rc *requestCounter) count(k string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.counts[k]
}

func TestWorkerRunsJobsInBatches(t *testing.T) {
	t.Parallel()
	rc := &requestCounter{}
	c, _ := newServerWith(t, serverSetup{wrap: rc.wrap})
	ctx := context.Background()

	const n = 60
	reqs := make([]spool.EnqueueRequest, n)
	for i := range reqs {
		var err error
		typ := "square"
		if i%2 == 1 {
			typ = "echo"
		}
		reqs[i], err = client.NewRequest(typ, map[string]int{"n": i})
		require.NoError(t, err)
	}
	jobs, err := c.EnqueueBatch(ctx, "math", reqs)
	require.NoError(t, err)

	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"math"}, Concurrency: 8})
	w.Handle("square", func(ctx context.Context, j *client.Job) (any, error) {
		var in struct{ N int }
		if err := j.Decode(&in); err != nil {
			return nil, client.Permanent(err)
		}
		return map[string]int{"square": in.N * in.N}, nil
	})
	w.Handle("echo", func(ctx context.Context, j *client.Job) (any, error) {
		return j.Payload, nil
	})
	runWorker(t, w)

	for i, j := range jobs {
		done := waitDone(t, c, j.ID)
		require.Equal(t, spool.StateSucceeded, done.State)
		require.Equal(t, 1, done.Attempt)
		if i%2 == 0 {
			require.JSONEq(t, fmt.Sprintf(`{"square":%d}`, i*i), string(done.Result))
		} else {
			require.JSONEq(t, fmt.Sprintf(`{"n":%d}`, i), string(done.Result))
		}
	}
	rc.mu.Lock()
	maxes := append([]int(nil), rc.maxes...)
	rc.mu.Unlock()
	require.Equal(t, 16, maxes[0], "one lease request asks for every free slot and as many to prefetch")
	require.Less(t, rc.count("POST /v1/leases"), n, "jobs are leased in batches")
	require.Less(t, rc.count("POST /v1/acks"), n, "outcomes are acknowledged in batches")
	require.Zero(t, rc.count("POST /v1/jobs/{id}/complete"), "through /v1/acks only")
}

// A job that runs three times its lease completes on its first attempt:
// heartbeats keep the lease, and carry the progress.
func TestWorkerHeartbeatsKeepLongJobAlive(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	job, err := c.Push(context.Background(), "slow", "long", nil)
	require.NoError(t, err)

	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"slow"}, Lease: time.Second, ProgressInterval: time.Millisecond})
	w.Handle("long", func(ctx context.Context, j *client.Job) (any, error) {
		j.Progress(10, "warming up")
		for i := 1; i <= 3; i++ {
			select {
			case <-time.After(time.Second): // the work itself
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
			j.Progress(float64(10+30*i), fmt.Sprintf("step %d of 3", i))
		}
		return "done", nil
	})
	runWorker(t, w)

	running := waitUntil(t, c, job.ID, "showed progress", func(j *spool.Job) bool {
		return j.Progress != nil && j.Progress.Percent >= 40
	})
	require.Equal(t, spool.StateActive, running.State)
	require.Contains(t, running.Progress.Message, "step")

	done := waitDone(t, c, job.ID)
	require.Equal(t, spool.StateSucceeded, done.State, "errors: %v", done.Errors)
	require.Equal(t, 1, done.Attempt, "the lease never lapsed")
	require.Empty(t, done.Errors)
	require.Equal(t, `"done"`, string(done.Result))
}

// When the lease is lost (it expired on the server), the next heartbeat
// cancels the handler's context, and its outcome is not sent.
func TestWorkerLostLeaseCancelsHandler(t *testing.T) {
	t.Parallel()
	clock := engine.NewManualClock(time.Now())
	c, srv := newServerWith(t, serverSetup{cfg: func(cfg *server.Config) { cfg.Clock = clock }})
	ctx := context.Background()
	job, err := c.Push(ctx, "q", "t", nil, client.MaxAttempts(1))
	require.NoError(t, err)

	started := make(chan struct{})
	cause := make(chan error, 1)
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"q"}, Lease: 2 * time.Second, HeartbeatInterval: 50 * time.Millisecond})
	w.Handle("t", func(ctx context.Context, j *client.Job) (any, error) {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return "too late", nil
	})
	runWorker(t, w)
	received(t, started, "the handler to start")

	// The server's clock passes the lease's expiry: the job is taken back.
	clock.Advance(time.Minute)
	require.NoError(t, servertest.Engine(srv).Maintain(ctx))

	got := received(t, cause, "the handler's context to end")
	require.ErrorIs(t, got, spool.ErrLeaseLost)
	done := waitDone(t, c, job.ID)
	require.Equal(t, spool.StateDead, done.State)
	require.Contains(t, done.Errors[0].Error, "lease expired")
	require.Empty(t, done.Result, "the late outcome was not sent")
}

// Cancelling a running job cancels its handler's context.
func TestWorkerCancelledJobCancelsHandler(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	job, err := c.Push(ctx, "q", "t", nil)
	require.NoError(t, err)
	started := make(chan struct{})
	cause := make(chan error, 1)
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"q"}, Lease: time.Second})
	w.Handle("t", func(ctx context.Context, j *client.Job) (any, error) {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	runWorker(t, w)
	received(t, started, "the handler to start")
	_, err = c.Cancel(ctx, job.ID)
	require.NoError(t, err)
	require.ErrorIs(t, received(t, cause, "the handler's context to end"), client.ErrJobCancelled)
	require.Equal(t, spool.StateCancelled, waitDone(t, c, job.ID).State)
}

// A panic fails the attempt with the panic and its stack; the worker goes
// on with the next job.
func TestWorkerSurvivesPanic(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	bad, err := c.Push(ctx, "q", "explode", nil, client.MaxAttempts(1))
	require.NoError(t, err)
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"q"}, Concurrency: 1})
	w.Handle("explode", func(ctx context.Context, j *client.Job) (any, error) {
		panic(fmt.Sprintf("boom in %s", j.ID))
	})
	w.Handle("fine", func(ctx context.Context, j *client.Job) (any, error) { return 1, nil })
	runWorker(t, w)

	dead := waitDone(t, c, bad.ID)
	require.Equal(t, spool.StateDead, dead.State)
	require.Len(t, dead.Errors, 1)
	msg := dead.Errors[0].Error
	require.True(t, strings.HasPrefix(msg, "panic: boom in "+bad.ID), msg)
	require.Contains(t, msg, "goroutine ", "the stack follows")
	require.Contains(t, msg, "worker_test.go", "the stack names the handler")

	good, err := c.Push(ctx, "q", "fine", nil)
	require.NoError(t, err)
	require.Equal(t, spool.StateSucceeded, waitDone(t, c, good.ID).State)
}

func TestWorkerPermanentAndRetryIn(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	perm, err := c.Push(ctx, "q", "permanent", nil, client.MaxAttempts(5))
	require.NoError(t, err)
	soon, err := c.Push(ctx, "q", "retry-now", nil, client.MaxAttempts(5))
	require.NoError(t, err)
	later, err := c.Push(ctx, "q", "retry-later", nil, client.MaxAttempts(5))
	require.NoError(t, err)

	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"q"}})
	w.Handle("permanent", func(ctx context.Context, j *client.Job) (any, error) {
		return nil, client.Permanent(errors.New("the input is bad: retrying will not help"))
	})
	w.Handle("retry-now", func(ctx context.Context, j *client.Job) (any, error) {
		if j.Attempt == 1 {
			return nil, client.RetryIn(errors.New("busy"), 0)
		}
		return j.Attempt, nil
	})
	w.Handle("retry-later", func(ctx context.Context, j *client.Job) (any, error) {
		return nil, client.RetryIn(errors.New("rate limited"), time.Hour)
	})
	runWorker(t, w)

	p := waitDone(t, c, perm.ID)
	require.Equal(t, spool.StateDead, p.State)
	require.Equal(t, 1, p.Attempt, "no retry after a permanent error")
	require.Equal(t, "the input is bad: retrying will not help", p.Errors[0].Error)

	s := waitDone(t, c, soon.ID)
	require.Equal(t, spool.StateSucceeded, s.State)
	require.Equal(t, "2", string(s.Result))
	require.Equal(t, "busy", s.Errors[0].Error)

	l := waitUntil(t, c, later.ID, "was scheduled", func(j *spool.Job) bool { return j.State == spool.StateScheduled })
	require.WithinDuration(t, time.Now().Add(time.Hour), l.RunAt, 5*time.Minute)
}

// A job's timeout is its handler's deadline; running past it fails the
// attempt.
func TestWorkerJobTimeout(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	job, err := c.Push(context.Background(), "q", "slow", nil, client.JobTimeout(100*time.Millisecond), client.MaxAttempts(1))
	require.NoError(t, err)
	cause := make(chan error, 1)
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"q"}})
	w.Handle("slow", func(ctx context.Context, j *client.Job) (any, error) {
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) > j.Timeout {
			return nil, errors.New("no deadline from the job's timeout")
		}
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	runWorker(t, w)
	require.ErrorIs(t, received(t, cause, "the deadline"), client.ErrJobTimeout)
	done := waitDone(t, c, job.ID)
	require.Equal(t, spool.StateDead, done.State)
	require.Equal(t, "timed out after 100ms (the job's timeout): context deadline exceeded", done.Errors[0].Error)
}

func TestWorkerUnknownType(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()

	// By default the attempt fails with an error that says why.
	job, err := c.Push(ctx, "shared", "resize", nil, client.MaxAttempts(1))
	require.NoError(t, err)
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"shared"}, Name: "mailer-1"})
	w.Handle("email", func(ctx context.Context, j *client.Job) (any, error) { return nil, nil })
	stop := runWorker(t, w)
	dead := waitDone(t, c, job.ID)
	require.Equal(t, spool.StateDead, dead.State)
	require.Contains(t, dead.Errors[0].Error, `no handler for job type "resize" in worker mailer-1 (it handles "email")`)
	require.NoError(t, stop())

	// ReleaseUnknown hands it back, attempt not counted, for the pool that
	// handles it. (A queue of its own: the stopped worker's last long-poll
	// may still be open on "shared" for a moment.)
	job, err = c.Push(ctx, "shared-2", "resize", nil, client.MaxAttempts(1))
	require.NoError(t, err)
	released := make(chan struct{}, 1)
	counter := &releaseCounter{}
	mailer := newWorker(t, c, client.WorkerOptions{Queues: []string{"shared-2"}, UnknownType: client.ReleaseUnknown})
	mailer.Handle("email", func(ctx context.Context, j *client.Job) (any, error) { return nil, nil })
	stopMailer := runWorker(t, mailer)
	counter.wait(t, c, job.ID, released)
	received(t, released, "a release")
	require.NoError(t, stopMailer())

	j, err := c.Get(ctx, job.ID, 0)
	require.NoError(t, err)
	require.Equal(t, spool.StateReady, j.State)
	require.Equal(t, 0, j.Attempt, "released, not failed")
	require.Empty(t, j.Errors)

	resizer := newWorker(t, c, client.WorkerOptions{Queues: []string{"shared-2"}})
	resizer.Handle("resize", func(ctx context.Context, j *client.Job) (any, error) { return j.Attempt, nil })
	runWorker(t, resizer)
	done := waitDone(t, c, job.ID)
	require.Equal(t, spool.StateSucceeded, done.State)
	require.Equal(t, "1", string(done.Result), "its only attempt")
}

// releaseCounter watches a job until a worker has leased and released it.
type releaseCounter struct{}

func (releaseCounter) wait(t *testing.T, c *client.Client, id string, released chan<- struct{}) {
	t.Helper()
	waitUntil(t, c, id, "was leased and handed back", func(j *spool.Job) bool {
		return j.State == spool.StateReady && j.Worker != ""
	})
	released <- struct{}{}
}

// Shutdown: leasing stops, a job that finishes within the grace period
// completes, one that does not is released to run elsewhere at once, its
// attempt not counted.
func TestWorkerGracefulShutdownReleasesUnfinishedJobs(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	quick, err := c.Push(ctx, "q", "quick", nil)
	require.NoError(t, err)
	stuck, err := c.Push(ctx, "q", "stuck", nil)
	require.NoError(t, err)

	started := make(chan string, 2)
	proceed := make(chan struct{})
	cause := make(chan error, 1)
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"q"}, ShutdownGrace: 300 * time.Millisecond})
	w.Handle("quick", func(ctx context.Context, j *client.Job) (any, error) {
		started <- j.Type
		<-proceed
		return "finished in the grace period", nil
	})
	w.Handle("stuck", func(ctx context.Context, j *client.Job) (any, error) {
		started <- j.Type
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	runCtx, shutdown := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(runCtx) }()
	received(t, started, "a job to start")
	received(t, started, "the other job to start")

	shutdown()
	close(proceed) // the quick job finishes during the grace period
	require.NoError(t, received(t, stopped, "Run to return"))
	require.ErrorIs(t, received(t, cause, "the stuck handler's context to end"), client.ErrWorkerStopped)

	q := waitDone(t, c, quick.ID)
	require.Equal(t, spool.StateSucceeded, q.State)
	require.Equal(t, `"finished in the grace period"`, string(q.Result))

	s, err := c.Get(ctx, stuck.ID, 0)
	require.NoError(t, err)
	require.Equal(t, spool.StateReady, s.State, "released, not left to its lease")
	require.Equal(t, 0, s.Attempt, "the attempt is not counted")
	require.Empty(t, s.Errors)

	jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}})
	require.NoError(t, err)
	require.Len(t, jobs, 1, "another worker gets it at once")
	require.Equal(t, stuck.ID, jobs[0].ID)
	require.Equal(t, 1, jobs[0].Attempt)
}

// A worker leases Prefetch jobs beyond its running ones, runs no more than
// Concurrency at once, and hands the prefetched jobs back untouched when it
// stops.
func TestWorkerPrefetchLeasesAheadAndReleasesOnStop(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	reqs := make([]spool.EnqueueRequest, 10)
	for i := range reqs {
		reqs[i] = spool.EnqueueRequest{Type: "t", Timeout: dur(time.Hour)}
	}
	_, err := c.EnqueueBatch(ctx, "pf", reqs)
	require.NoError(t, err)

	var running, most atomic.Int64
	started := make(chan string, 10)
	proceed := make(chan struct{})
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"pf"}, Concurrency: 2, Prefetch: 3, ShutdownGrace: time.Minute})
	w.Handle("t", func(ctx context.Context, j *client.Job) (any, error) {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		started <- j.ID
		<-proceed
		running.Add(-1)
		return nil, nil
	})
	stop := runWorker(t, w)
	ran := map[string]bool{received(t, started, "a job to start"): true}
	ran[received(t, started, "a second job to start")] = true
	require.Eventually(t, func() bool {
		q, err := c.Queue(ctx, "pf")
		return err == nil && q.Counts[spool.StateActive] == 5
	}, 10*time.Second, time.Millisecond, "2 running and 3 prefetched jobs leased")

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// The prefetched jobs go back at once, while the running ones may
	// finish in the grace period.
	require.Eventually(t, func() bool {
		q, err := c.Queue(ctx, "pf")
		return err == nil && q.Counts[spool.StateActive] == 2 && q.Counts[spool.StateReady] == 8
	}, 10*time.Second, time.Millisecond, "prefetched jobs released")
	close(proceed)
	require.NoError(t, received(t, stopped, "Run to return"))
	require.Equal(t, int64(2), most.Load(), "at most Concurrency handlers at once")
	require.Len(t, started, 0, "no prefetched job ran")

	page, err := c.ListJobs(ctx, "pf", client.ListJobsOptions{})
	require.NoError(t, err)
	for _, j := range page.Jobs {
		if ran[j.ID] {
			require.Equal(t, spool.StateSucceeded, j.State)
			continue
		}
		require.Equal(t, spool.StateReady, j.State)
		require.Zero(t, j.Attempt, "a released prefetched job keeps its attempts")
	}
}

// A prefetched job's timeout counts from when its handler starts, not
// from its lease.
func TestWorkerPrefetchedJobTimeoutStartsWithHandler(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	const timeout = 300 * time.Millisecond
	_, err := c.EnqueueBatch(ctx, "pf", []spool.EnqueueRequest{
		{Type: "slow", Timeout: dur(timeout)}, {Type: "slow", Timeout: dur(timeout)},
	})
	require.NoError(t, err)
	left := make(chan time.Duration, 2)
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"pf"}, Concurrency: 1, Prefetch: 1})
	w.Handle("slow", func(ctx context.Context, j *client.Job) (any, error) {
		dl, ok := ctx.Deadline()
		require.True(t, ok)
		left <- time.Until(dl)
		time.Sleep(timeout / 2) // the job is slow by nature; the other waits meanwhile
		return nil, nil
	})
	runWorker(t, w)
	received(t, left, "the first job to start")
	second := received(t, left, "the prefetched job to start")
	require.Greater(t, second, timeout*3/4, "the wait for a slot is not taken from the job's timeout")
}

// Leasing stops as soon as Run's context ends.
func TestWorkerStopsLeasingOnShutdown(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	var handled atomic.Int64
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"q"}})
	w.Handle("t", func(ctx context.Context, j *client.Job) (any, error) {
		handled.Add(1)
		return nil, nil
	})
	stop := runWorker(t, w)
	first, err := c.Push(ctx, "q", "t", nil)
	require.NoError(t, err)
	require.Equal(t, spool.StateSucceeded, waitDone(t, c, first.ID).State)
	require.NoError(t, stop())
	after, err := c.Push(ctx, "q", "t", nil)
	require.NoError(t, err)
	j, err := c.Get(ctx, after.ID, 0)
	require.NoError(t, err)
	// The stopped worker's long-poll may have been answered by the server
	// in the instant its context ended: then the job is leased to nobody
	// who will run it, and comes back when that lease lapses (at least
	// once). If the server saw the caller leave first, it handed the job
	// back at once. Either way the stopped worker ran nothing more.
	if j.State != spool.StateReady {
		require.Equal(t, spool.StateActive, j.State)
		require.Equal(t, 1, j.Attempt)
	}
	require.Equal(t, int64(1), handled.Load())
}

func TestWorkerOptionsAndMisuse(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	for _, tt := range []struct {
		opts client.WorkerOptions
		want string
	}{
		{client.WorkerOptions{}, "WorkerOptions.Queues is empty"},
		{client.WorkerOptions{Queues: []string{"Bad"}}, "WorkerOptions.Queues"},
		{client.WorkerOptions{Queues: []string{"q"}, Concurrency: -1}, "WorkerOptions.Concurrency"},
		{client.WorkerOptions{Queues: []string{"q"}, Lease: time.Millisecond}, "WorkerOptions.Lease"},
		{client.WorkerOptions{Queues: []string{"q"}, Lease: 3 * time.Second, HeartbeatInterval: 3 * time.Second}, "WorkerOptions.HeartbeatInterval"},
		{client.WorkerOptions{Queues: []string{"q"}, PollWait: time.Hour}, "WorkerOptions.PollWait"},
		{client.WorkerOptions{Queues: []string{"q"}, AckBatch: 5000}, "WorkerOptions.AckBatch"},
		{client.WorkerOptions{Queues: []string{"q"}, UnknownType: 7}, "WorkerOptions.UnknownType"},
		{client.WorkerOptions{Queues: []string{"q"}, Name: "a\nb"}, "WorkerOptions.Name"},
	} {
		_, err := client.NewWorker(c, tt.opts)
		require.ErrorContains(t, err, tt.want)
	}
	_, err := client.NewWorker(nil, client.WorkerOptions{Queues: []string{"q"}})
	require.Error(t, err)

	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"q"}})
	require.ErrorContains(t, w.Run(context.Background()), "no handler registered")
	require.Panics(t, func() { w.Handle("", func(context.Context, *client.Job) (any, error) { return nil, nil }) })
	w.Handle("t", func(context.Context, *client.Job) (any, error) { return nil, nil })
	require.Panics(t, func() { w.Handle("t", func(context.Context, *client.Job) (any, error) { return nil, nil }) })

	w2 := newWorker(t, c, client.WorkerOptions{Queues: []string{"q"}})
	w2.Handle("t", func(context.Context, *client.Job) (any, error) { return nil, nil })
	runWorker(t, w2)
	j, err := c.Push(context.Background(), "q", "t", nil)
	require.NoError(t, err)
	waitDone(t, c, j.ID) // w2 runs
	require.ErrorContains(t, w2.Run(context.Background()), "more than once")
}

func TestJobHelpers(t *testing.T) {
	t.Parallel()
	j := &client.Job{ID: "x", Type: "t", Payload: json.RawMessage(`{"a":1}`)}
	var v struct{ A int }
	require.NoError(t, j.Decode(&v))
	require.Equal(t, 1, v.A)
	require.ErrorContains(t, (&client.Job{ID: "x"}).Decode(&v), "no payload")
	require.ErrorContains(t, (&client.Job{ID: "x", Payload: json.RawMessage(`[]`)}).Decode(&v), "decoding the payload of job x")
	j.Progress(50, "a Job not made by a Worker ignores progress")

	require.NoError(t, client.Permanent(nil))
	require.NoError(t, client.RetryIn(nil, time.Second))
	base := errors.New("base")
	require.ErrorIs(t, client.Permanent(base), base)
	require.ErrorIs(t, client.RetryIn(base, time.Second), base)
	require.Equal(t, "base", client.RetryIn(client.Permanent(base), time.Second).Error())
}

// No goroutine of the worker outlives Run. Not parallel: it compares the
// goroutines before and after.
func TestWorkerLeavesNoGoroutines(t *testing.T) {
	c := newServer(t)
	ctx := context.Background()
	before := goleak.IgnoreCurrent()
	for i := 0; i < 20; i++ {
		_, err := c.Push(ctx, "q", "t", i)
		require.NoError(t, err)
	}
	slow, err := c.Push(ctx, "q", "slow", nil)
	require.NoError(t, err)
	started := make(chan struct{})
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"q"}, Concurrency: 4, Lease: time.Second, ShutdownGrace: 50 * time.Millisecond})
	w.Handle("t", func(ctx context.Context, j *client.Job) (any, error) {
		j.Progress(50, "half")
		return j.Payload, nil
	})
	w.Handle("slow", func(ctx context.Context, j *client.Job) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	stop := runWorker(t, w)
	received(t, started, "the slow job")
	require.NoError(t, stop())
	require.Equal(t, spool.StateReady, waitUntil(t, c, slow.ID, "was released", func(j *spool.Job) bool { return j.State == spool.StateReady }).State)
	c.Close() // the connections are the Client's, not the Worker's
	goleak.VerifyNone(t, before)
}

// With Prefetch left at its default, a worker leases further ahead while
// its jobs are shorter than a lease round trip, and comes back to
// Concurrency when they are long enough for a prefetched job to wait. It
// never holds more jobs than Concurrency plus its window.
func TestWorkerAdaptivePrefetch(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()
	const conc = 2
	var handled, slowRunning, slowMost atomic.Int64
	w := newWorker(t, c, client.WorkerOptions{Queues: []string{"ad"}, Concurrency: conc})
	require.Equal(t, conc, client.PrefetchWindow(w), "it starts at Concurrency")
	w.Handle("fast", func(context.Context, *client.Job) (any, error) {
		handled.Add(1)
		return nil, nil
	})
	w.Handle("slow", func(context.Context, *client.Job) (any, error) {
		n := slowRunning.Add(1)
		for m := slowMost.Load(); n > m && !slowMost.CompareAndSwap(m, n); m = slowMost.Load() {
		}
		time.Sleep(150 * time.Millisecond)
		slowRunning.Add(-1)
		handled.Add(1)
		return nil, nil
	})
	stop := runWorker(t, w)
	defer func() { require.NoError(t, stop()) }()

	enqueue := func(typ string, n int) {
		reqs := make([]spool.EnqueueRequest, n)
		for i := range reqs {
			reqs[i] = spool.EnqueueRequest{Type: typ}
		}
		_, err := c.EnqueueBatch(ctx, "ad", reqs)
		require.NoError(t, err)
	}
	enqueue("fast", 1000)
	require.Eventually(t, func() bool { return handled.Load() == 1000 }, 30*time.Second, time.Millisecond)
	// A handler returns before its ack reaches the server (acks are
	// coalesced): wait for the server to see none of the fast jobs active,
	// so that the active count below is the slow jobs' alone.
	require.Eventually(t, func() bool {
		q, err := c.Queue(ctx, "ad")
		return err == nil && q.Counts[spool.StateActive] == 0
	}, 30*time.Second, time.Millisecond)
	grown := client.PrefetchWindow(w)
	require.Greater(t, grown, conc, "no-op jobs make it lease further ahead")
	require.LessOrEqual(t, grown, 8*conc)

	enqueue("slow", 12)
	var mostActive int64
	require.Eventually(t, func() bool {
		q, err := c.Queue(ctx, "ad")
		if err == nil {
			mostActive = max(mostActive, q.Counts[spool.StateActive])
		}
		return handled.Load() == 1012
	}, 30*time.Second, time.Millisecond)
	require.Equal(t, conc, client.PrefetchWindow(w), "long jobs bring it back to Concurrency")
	require.LessOrEqual(t, slowMost.Load(), int64(conc))
	require.LessOrEqual(t, mostActive, int64(conc+grown), "never more leased than the window allows")
}
