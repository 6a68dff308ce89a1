package flow

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// runWorkers runs n SDK workers on queue, spread over the cluster's nodes,
// until ctx ends, and waits for them when the test ends.
func runWorkers(t *testing.T, ctx context.Context, c cluster, queue string, n, concurrency int, h client.HandlerFunc) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		w, err := client.NewWorker(c.clients[i%len(c.clients)], client.WorkerOptions{
			Queues: []string{queue}, Concurrency: concurrency, PollWait: 2 * time.Second,
			Lease: 30 * time.Second, ShutdownGrace: 5 * time.Second, Name: fmt.Sprintf("w%d", i),
		})
		require.NoError(t, err)
		w.HandleDefault(h)
		wg.Go(func() {
			if err := w.Run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("worker %d: %v", i, err)
			}
		})
	}
	t.Cleanup(wg.Wait)
}

// TestOrderingKeys: 200 jobs over 10 ordering keys, 12 workers of 4
// slots each: per key, handlers start in enqueue order, each exactly once,
// and never overlap; different keys do run at the same time.
func TestOrderingKeys(t *testing.T) {
	eachStore(t, func(t *testing.T, c cluster) {
		const (
			queue  = "ordered"
			keys   = 10
			perKey = 20
		)
		type msg struct {
			Key string `json:"key"`
			N   int    `json:"n"`
		}
		var reqs []spool.EnqueueRequest
		for n := range perKey {
			for k := range keys {
				req, err := client.NewRequest("step", msg{Key: fmt.Sprintf("k%d", k), N: n}, client.OrderingKey(fmt.Sprintf("k%d", k)))
				require.NoError(t, err)
				reqs = append(reqs, req)
			}
		}
		// In a few batches, through different nodes: the order of each
		// key is the order of the batches.
		for i := 0; i < len(reqs); i += 50 {
			_, err := c.clients[(i/50)%len(c.clients)].EnqueueBatch(t.Context(), queue, reqs[i:i+50])
			require.NoError(t, err)
		}

		var (
			mu        sync.Mutex
			started   = map[string][]int{}
			running   = map[string]int{}
			overlaps  []string
			keysAtO   atomic.Int32 // keys running at once now
			mostKeys  atomic.Int32
			completed atomic.Int32
		)
		done := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		runWorkers(t, ctx, c, queue, 12, 4, func(ctx context.Context, j *client.Job) (any, error) {
			var m msg
			if err := j.Decode(&m); err != nil {
				return nil, err
			}
			mu.Lock()
			running[m.Key]++
			if running[m.Key] > 1 {
				overlaps = append(overlaps, fmt.Sprintf("%s job %d started while another of its key ran", m.Key, m.N))
			}
			started[m.Key] = append(started[m.Key], m.N)
			mu.Unlock()
			now := keysAtO.Add(1)
			for {
				most := mostKeys.Load()
				if now <= most || mostKeys.CompareAndSwap(most, now) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond) // the work
			keysAtO.Add(-1)
			mu.Lock()
			running[m.Key]--
			mu.Unlock()
			if completed.Add(1) == keys*perKey {
				close(done)
			}
			return nil, nil
		})
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatalf("only %d of %d jobs ran", completed.Load(), keys*perKey)
		}
		cancel()

		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, overlaps)
		want := make([]int, perKey)
		for n := range want {
			want[n] = n
		}
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			require.Equal(t, want, started[key], "handlers of %s start in enqueue order, once each", key)
		}
		t.Logf("%s: at most %d keys ran at once", c.name, mostKeys.Load())
		require.Greater(t, mostKeys.Load(), int32(1), "keys run in parallel")
	})
}

// TestConcurrencyLimit: a queue limited to 3 active jobs, 20 workers of 2
// slots each: never more than 3 handlers run at once.
func TestConcurrencyLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, c cluster) {
		const (
			queue = "capped"
			jobs  = 120
		)
		_, err := c.clients[0].UpdateQueue(t.Context(), queue, spool.QueueConfig{Concurrency: ptr(3)})
		require.NoError(t, err)
		var reqs []spool.EnqueueRequest
		for range jobs {
			reqs = append(reqs, spool.EnqueueRequest{Type: "t"})
		}
		_, err = c.clients[len(c.clients)-1].EnqueueBatch(t.Context(), queue, reqs)
		require.NoError(t, err)

		var running, most, completed atomic.Int32
		done := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		runWorkers(t, ctx, c, queue, 20, 2, func(ctx context.Context, j *client.Job) (any, error) {
			now := running.Add(1)
			for {
				m := most.Load()
				if now <= m || most.CompareAndSwap(m, now) {
					break
				}
			}
			time.Sleep(3 * time.Millisecond) // the work
			running.Add(-1)
			if completed.Add(1) == jobs {
				close(done)
			}
			return nil, nil
		})
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatalf("only %d of %d jobs ran", completed.Load(), jobs)
		}
		cancel()
		t.Logf("%s: at most %d handlers ran at once", c.name, most.Load())
		require.LessOrEqual(t, most.Load(), int32(3), "the concurrency limit holds")
		require.Greater(t, most.Load(), int32(1), "the limit is not a single lane")
	})
}

// TestRateLimit: a queue limited to 20 starts per second with bursts of
// 2, 12 workers: in no stretch of time do more jobs start (by their
// started_at, the lease's time) than the token bucket allows: burst +
// rate x time.
func TestRateLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, c cluster) {
		const (
			queue = "paced"
			jobs  = 40
			rate  = 20.0
			burst = 2
		)
		_, err := c.clients[0].UpdateQueue(t.Context(), queue, spool.QueueConfig{Rate: ptr(rate), Burst: ptr(burst)})
		require.NoError(t, err)
		var reqs []spool.EnqueueRequest
		for range jobs {
			reqs = append(reqs, spool.EnqueueRequest{Type: "t"})
		}
		_, err = c.clients[0].EnqueueBatch(t.Context(), queue, reqs)
		require.NoError(t, err)

		var (
			mu  sync.Mutex
			ids []string
		)
		done := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		runWorkers(t, ctx, c, queue, 12, 2, func(ctx context.Context, j *client.Job) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			ids = append(ids, j.ID)
			if len(ids) == jobs {
				close(done)
			}
			return nil, nil
		})
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatal("not every job ran")
		}
		cancel()
		mu.Lock()
		defer mu.Unlock()
		var starts []time.Time
		for _, id := range ids {
			j, err := c.clients[0].Get(t.Context(), id, 0)
			require.NoError(t, err)
			require.NotNil(t, j.StartedAt)
			starts = append(starts, *j.StartedAt)
		}
		slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
		// n starts need at least (n-burst)/rate seconds; started_at has
		// microsecond precision on PostgreSQL.
		for n := burst + 1; n <= jobs; n++ {
			need := time.Duration(float64(n-burst) / rate * float64(time.Second))
			for i := 0; i+n-1 < len(starts); i++ {
				got := starts[i+n-1].Sub(starts[i])
				require.GreaterOrEqual(t, got, need-time.Millisecond, "%d starts in %s; the rate allows them in no less than %s", n, got, need)
			}
		}
		t.Logf("%s: %d jobs started over %s (the rate allows no less than %s)", c.name, jobs,
			starts[len(starts)-1].Sub(starts[0]).Round(time.Millisecond), time.Duration(float64(jobs-burst)/rate*float64(time.Second)))
	})
}

func ptr[T any](v T) *T { return &v }
