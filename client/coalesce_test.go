package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// gatedServer is a server whose first single-job enqueue waits until
// release is called, so that the calls made meanwhile gather behind it.
// It counts the single and batch enqueue requests it answers.
type gatedServer struct {
	c              *client.Client
	entered        chan struct{}
	gate           chan struct{}
	singles, batch atomic.Int64
	once           sync.Once
}

func newGatedServer(t *testing.T, opts ...client.Option) *gatedServer {
	t.Helper()
	g := &gatedServer{entered: make(chan struct{}), gate: make(chan struct{})}
	first := atomic.Bool{}
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/queues/") {
				switch {
				case strings.HasSuffix(r.URL.Path, "/jobs:batch"):
					g.batch.Add(1)
				case strings.HasSuffix(r.URL.Path, "/jobs"):
					g.singles.Add(1)
					if first.CompareAndSwap(false, true) {
						close(g.entered)
						<-g.gate
					}
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	g.c, _ = newServerWith(t, serverSetup{wrap: wrap}, opts...)
	t.Cleanup(g.release)
	return g
}

func (g *gatedServer) release() { g.once.Do(func() { close(g.gate) }) }

// hold sends a first Push to queue and returns once the server holds it;
// its result arrives on the returned channel.
func (g *gatedServer) hold(t *testing.T, queue string) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := g.c.Push(context.Background(), queue, "first", nil)
		errc <- err
	}()
	<-g.entered
	return errc
}

// waitPending waits until n calls to queue wait behind the request in
// flight.
func waitPending(t *testing.T, c *client.Client, queue string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return client.PendingEnqueues(c, queue) == n },
		10*time.Second, time.Millisecond, "calls waiting to be coalesced")
}

func TestPushCoalescedEachCallerGetsItsOwnJob(t *testing.T) {
	t.Parallel()
	g := newGatedServer(t)
	first := g.hold(t, "co")
	const n = 63
	jobs := make([]*spool.Job, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jobs[i], errs[i] = g.c.Push(context.Background(), "co", "t", map[string]int{"i": i})
		}()
	}
	waitPending(t, g.c, "co", n)
	g.release()
	wg.Wait()
	require.NoError(t, <-first)
	seen := map[string]bool{}
	for i := range n {
		require.NoError(t, errs[i])
		require.JSONEq(t, fmt.Sprintf(`{"i":%d}`, i), string(jobs[i].Payload), "call %d got another's job", i)
		require.False(t, seen[jobs[i].ID], "job %s returned twice", jobs[i].ID)
		seen[jobs[i].ID] = true
		require.Equal(t, spool.StateReady, jobs[i].State)
		require.True(t, strings.HasPrefix(jobs[i].IdempotencyKey, "spool-go-"), "each job keeps its own key across retries")
	}
	require.Equal(t, int64(1), g.singles.Load(), "only the first call went alone")
	require.Equal(t, int64(1), g.batch.Load(), "the others shared one request")
	q, err := g.c.Queue(context.Background(), "co")
	require.NoError(t, err)
	require.Equal(t, int64(n+1), q.Counts[spool.StateReady])
}

func TestPushCoalescedBadJobFailsOnlyItsCaller(t *testing.T) {
	t.Parallel()
	g := newGatedServer(t)
	first := g.hold(t, "co")
	const n = 10
	const bad = 4
	jobs := make([]*spool.Job, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		opts := []client.EnqueueOption{}
		if i == bad {
			// Passes the client's checks; the server refuses it.
			opts = append(opts, client.RunAt(time.Now().Add(2*spool.MaxDelay)))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			jobs[i], errs[i] = g.c.Push(context.Background(), "co", "t", i, opts...)
		}()
		waitPending(t, g.c, "co", i+1)
	}
	g.release()
	wg.Wait()
	require.NoError(t, <-first)
	for i := range n {
		if i == bad {
			require.ErrorIs(t, errs[i], spool.ErrInvalid)
			require.Contains(t, errs[i].Error(), "run_at")
			require.NotContains(t, errs[i].Error(), "jobs[", "the message is the one the job gets alone")
			require.Nil(t, jobs[i])
			continue
		}
		require.NoError(t, errs[i], "call %d", i)
		require.JSONEq(t, fmt.Sprint(i), string(jobs[i].Payload))
	}
	require.Equal(t, int64(1), g.batch.Load(), "one batch, refused whole")
	require.Equal(t, int64(1+n), g.singles.Load(), "then each call alone")
	q, err := g.c.Queue(context.Background(), "co")
	require.NoError(t, err)
	require.Equal(t, int64(n), q.Counts[spool.StateReady], "the first and the %d good ones", n-1)
}

func TestPushCoalescedQueueFullFailsTheBatch(t *testing.T) {
	t.Parallel()
	g := newGatedServer(t, client.WithRetryPolicy(client.NoRetry))
	ctx := context.Background()
	_, err := g.c.UpdateQueue(ctx, "co", spool.QueueConfig{MaxDepth: ptrTo(int64(5))})
	require.NoError(t, err)
	first := g.hold(t, "co")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = g.c.Push(ctx, "co", "t", i)
		}()
	}
	waitPending(t, g.c, "co", n)
	g.release()
	wg.Wait()
	require.NoError(t, <-first)
	for i := range n {
		require.ErrorIs(t, errs[i], spool.ErrQueueFull, "call %d", i)
		var ce *client.Error
		require.True(t, errors.As(errs[i], &ce))
		require.Positive(t, ce.RetryAfter)
	}
	require.Equal(t, int64(1), g.batch.Load(), "a full queue is not retried job by job")
	q, err := g.c.Queue(ctx, "co")
	require.NoError(t, err)
	require.Equal(t, int64(1), q.Counts[spool.StateReady], "nothing of the batch is stored")
}

func TestEnqueueCoalescedIdempotencyKeys(t *testing.T) {
	t.Parallel()
	g := newGatedServer(t)
	ctx := context.Background()
	firstc := make(chan *spool.Job, 1)
	go func() {
		j, err := g.c.Push(ctx, "co", "t", nil, client.IdempotencyKey("k-first"))
		assert.NoError(t, err)
		firstc <- j
	}()
	<-g.entered
	type answer struct {
		job      *spool.Job
		existing bool
		err      error
	}
	keys := []string{"k-first", "k-dup", "k-dup", ""}
	answers := make([]answer, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &answers[i]
			a.job, a.existing, a.err = g.c.Enqueue(ctx, "co", spool.EnqueueRequest{Type: "t", IdempotencyKey: k})
		}()
		waitPending(t, g.c, "co", i+1)
	}
	g.release()
	wg.Wait()
	first := <-firstc
	require.NotNil(t, first)
	for _, a := range answers {
		require.NoError(t, a.err)
	}
	require.Equal(t, int64(1), g.batch.Load())
	require.Equal(t, first.ID, answers[0].job.ID, "a key seen before returns the earlier job")
	require.True(t, answers[0].existing)
	require.Equal(t, answers[1].job.ID, answers[2].job.ID, "one key, one job, even within a batch")
	require.NotEqual(t, answers[1].existing, answers[2].existing, "one of the two created it")
	require.False(t, answers[3].existing, "a made-up key is never reported as existing")
	require.NotEqual(t, first.ID, answers[3].job.ID)
	q, err := g.c.Queue(ctx, "co")
	require.NoError(t, err)
	require.Equal(t, int64(3), q.Counts[spool.StateReady])
}

func TestPushCoalescedCallerGivesUp(t *testing.T) {
	t.Parallel()
	g := newGatedServer(t)
	first := g.hold(t, "co")
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		_, err := g.c.Push(ctx, "co", "t", "gone")
		gone <- err
	}()
	waitPending(t, g.c, "co", 1)
	kept := make(chan error, 1)
	go func() {
		_, err := g.c.Push(context.Background(), "co", "t", "kept")
		kept <- err
	}()
	waitPending(t, g.c, "co", 2)
	cancel()
	err := <-gone
	require.ErrorIs(t, err, context.Canceled, "a waiting call returns when its context ends")
	var te *client.TransportError
	require.ErrorAs(t, err, &te)
	g.release()
	require.NoError(t, <-first)
	require.NoError(t, <-kept)
	q, err := g.c.Queue(context.Background(), "co")
	require.NoError(t, err)
	require.Equal(t, int64(2), q.Counts[spool.StateReady], "the call that gave up before its batch left is not sent")
}

func TestPushWithoutCoalescing(t *testing.T) {
	t.Parallel()
	g := newGatedServer(t, client.WithCoalescing(0))
	first := g.hold(t, "co")
	const n = 8
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := g.c.Push(context.Background(), "co", "t", nil)
			assert.NoError(t, err)
		}()
	}
	require.Eventually(t, func() bool { return g.singles.Load() == n+1 }, 10*time.Second, time.Millisecond)
	g.release()
	wg.Wait()
	require.NoError(t, <-first)
	require.Zero(t, g.batch.Load())
}

// TestPushConcurrentRace has many producers share requests while the
// race detector watches.
func TestPushConcurrentRace(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	const producers, each = 16, 10
	ids := make(chan string, producers*each)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				j, err := c.Push(context.Background(), "race", "t", []int{p, i})
				if !assert.NoError(t, err) {
					return
				}
				assert.JSONEq(t, fmt.Sprintf("[%d,%d]", p, i), string(j.Payload))
				ids <- j.ID
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		require.False(t, seen[id])
		seen[id] = true
	}
	require.Len(t, seen, producers*each)
}

func ptrTo[T any](v T) *T { return &v }

// Coalesced requests stay well under the server's body limit: calls whose
// payloads add up to more than the limit (4 MiB; 4 KiB here) go in more
// than one batch.
func TestPushCoalescedBatchesAreBoundedBySize(t *testing.T) {
	t.Parallel()
	g := newGatedServer(t, client.WithCoalescedBodyLimit(4<<10))
	first := g.hold(t, "co")
	payload := []byte(`"` + strings.Repeat("x", 1000) + `"`)
	const n = 6 // 4 then 2 per batch
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := g.c.Push(context.Background(), "co", "t", payload)
			assert.NoError(t, err)
		}()
	}
	waitPending(t, g.c, "co", n)
	g.release()
	wg.Wait()
	require.NoError(t, <-first)
	require.Equal(t, int64(2), g.batch.Load())
	require.Equal(t, int64(1), g.singles.Load())
}

// Producers that call Push in a loop share requests: after answering a
// batch, the SDK waits (a few yields) for its callers' next calls, so
// they go together instead of splitting into two groups that take turns
// (about producers/2 jobs per request).
func TestPushLoopingProducersShareRequests(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	c, _ := newServerWith(t, serverSetup{wrap: countRequests(&requests)})
	const producers, each = 8, 150
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			for range each {
				if _, err := c.Push(context.Background(), "loop", "t", nil); !assert.NoError(t, err) {
					return
				}
			}
		})
	}
	wg.Wait()
	perRequest := float64(producers*each) / float64(requests.Load())
	t.Logf("%.1f jobs per request", perRequest)
	require.Greater(t, perRequest, 5.5, "8 looping producers share each request")
}
