package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// BenchmarkWorker runs b.N no-op jobs through a Worker against an
// in-process server on the embedded store, and reports jobs/s: the
// overhead of Spool itself (lease, ack, fsyncs, HTTP) per job. Each job is
// on disk before the timer starts; the time ends when the last outcome is
// stored (Run returns after flushing its acks).
func BenchmarkWorker(b *testing.B) {
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			var requests atomic.Int64
			c, _ := newServerWith(b, serverSetup{wrap: countRequests(&requests)})
			ctx := context.Background()
			reqs := make([]spool.EnqueueRequest, 0, 1000)
			for left := b.N; left > 0; left -= len(reqs) {
				reqs = reqs[:0]
				for i := 0; i < min(left, 1000); i++ {
					reqs = append(reqs, spool.EnqueueRequest{Type: "noop"})
				}
				_, err := c.EnqueueBatch(ctx, "bench", reqs)
				require.NoError(b, err)
			}
			var handled atomic.Int64
			all := make(chan struct{})
			w, err := client.NewWorker(c, client.WorkerOptions{Queues: []string{"bench"}, Concurrency: conc, PollWait: time.Second})
			require.NoError(b, err)
			w.Handle("noop", func(context.Context, *client.Job) (any, error) {
				if handled.Add(1) == int64(b.N) {
					close(all)
				}
				return nil, nil
			})
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			b.ResetTimer()
			requests.Store(0)
			cpu0 := cpuTime()
			start := time.Now()
			go func() { done <- w.Run(runCtx) }()
			<-all
			stop()
			require.NoError(b, <-done)
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
			b.ReportMetric(float64(requests.Load())/float64(b.N), "reqs/job")
			reportCPU(b, cpu0, b.N)
			q, err := c.Queue(ctx, "bench")
			require.NoError(b, err)
			require.Equal(b, int64(b.N), q.Counts[spool.StateSucceeded])
		})
	}
}

var benchJobPayload = json.RawMessage(`{"to":"user@example.com","subject":"Welcome","body":"0123456789012345678901234567890123456789"}`)

// BenchmarkPushConcurrent8: one job per call from 8 concurrent producers
// through Client.Push, each call returning once its job is on disk;
// ns/op is per job. A producer waits for an fsync per call, so this is
// bound by 8 / (fsync + round trip).
func BenchmarkPushConcurrent8(b *testing.B) { benchPush(b, 8) }

// BenchmarkPushConcurrent: as BenchmarkPushConcurrent8 with more
// producers, which share requests and fsyncs as they grow.
// With coalesce=off, each call is a request of its own.
func BenchmarkPushConcurrent(b *testing.B) {
	for _, n := range []int{8, 64, 256} {
		b.Run(fmt.Sprintf("producers=%d/coalesce=on", n), func(b *testing.B) { benchPush(b, n) })
		b.Run(fmt.Sprintf("producers=%d/coalesce=off", n), func(b *testing.B) { benchPush(b, n, client.WithCoalescing(0)) })
	}
}

func benchPush(b *testing.B, producers int, opts ...client.Option) {
	var requests atomic.Int64
	c, _ := newServerWith(b, serverSetup{wrap: countRequests(&requests)}, opts...)
	ctx := context.Background()
	if producers%runtime.GOMAXPROCS(0) != 0 {
		b.Skipf("needs GOMAXPROCS dividing %d", producers)
	}
	b.SetParallelism(producers / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Push(ctx, "bench", "email.send", benchJobPayload); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(requests.Load())/float64(b.N), "reqs/job")
	reportCPU(b, cpu0, b.N)
}

// cpuTime is the CPU time (user and system) the process has used: server
// and client both run in it, so its growth per job is what a job costs,
// a figure that is less noisy than wall time on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time used since start per job.
func reportCPU(b *testing.B, start time.Duration, jobs int) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(jobs), "cpu-µs/job")
}

// countRequests wraps a server's handler to count the requests it serves.
func countRequests(n *atomic.Int64) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			h.ServeHTTP(w, r)
		})
	}
}

// BenchmarkEnqueueBatch: batches of size jobs from 2 producers through
// Client.EnqueueBatch (answer=jobs) or Client.EnqueueBatchIDs
// (answer=ids); ns/op is per job.
func BenchmarkEnqueueBatch(b *testing.B) {
	for _, ids := range []bool{false, true} {
		for _, size := range []int{100, 1000} {
			answer := map[bool]string{false: "jobs", true: "ids"}[ids]
			b.Run(fmt.Sprintf("answer=%s/size=%d", answer, size), func(b *testing.B) {
				c := newServer(b)
				ctx := context.Background()
				reqs := make([]spool.EnqueueRequest, size)
				for i := range reqs {
					reqs[i] = spool.EnqueueRequest{Type: "email.send", Payload: benchJobPayload}
				}
				send := func() (err error) {
					if ids {
						_, err = c.EnqueueBatchIDs(ctx, "bench", reqs)
					} else {
						_, err = c.EnqueueBatch(ctx, "bench", reqs)
					}
					return err
				}
				b.ResetTimer()
				cpu0 := cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := send(); err != nil {
							b.Error(err)
							return
						}
						for i := 1; i < size && pb.Next(); i++ {
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
				reportCPU(b, cpu0, b.N)
			})
		}
	}
}

// BenchmarkLatency1000: jobs pushed at 1,000 per second and run by a
// Worker; reports the p50 and p99 from Push's call to the handler's start.
// With coalesce=off, each Push is a request of its own.
func BenchmarkLatency1000(b *testing.B) {
	b.Run("coalesce=on", func(b *testing.B) { benchLatency(b) })
	b.Run("coalesce=off", func(b *testing.B) { benchLatency(b, client.WithCoalescing(0)) })
}

func benchLatency(b *testing.B, opts ...client.Option) {
	c := newServer(b, opts...)
	ctx := context.Background()
	n := max(b.N, 500)
	lat := make([]time.Duration, 0, n)
	var mu sync.Mutex
	all := make(chan struct{})
	w, err := client.NewWorker(c, client.WorkerOptions{Queues: []string{"lat"}, Concurrency: 16})
	require.NoError(b, err)
	w.Handle("t", func(_ context.Context, j *client.Job) (any, error) {
		var sent int64
		if err := json.Unmarshal(j.Payload, &sent); err != nil {
			return nil, err
		}
		mu.Lock()
		lat = append(lat, time.Since(time.Unix(0, sent)))
		if len(lat) == n {
			close(all)
		}
		mu.Unlock()
		return nil, nil
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	for i := 0; i < n; i++ {
		<-tick.C
		go func() {
			now := time.Now().UnixNano()
			if _, err := c.Push(ctx, "lat", "t", now); err != nil {
				b.Error(err)
			}
		}()
	}
	tick.Stop()
	<-all
	b.StopTimer()
	stop()
	require.NoError(b, <-done)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
