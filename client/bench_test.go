package client_test

import (
	"context"
	"fmt"
	"sync/atomic"
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
			c := newServer(b)
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
			start := time.Now()
			go func() { done <- w.Run(runCtx) }()
			<-all
			stop()
			require.NoError(b, <-done)
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
			q, err := c.Queue(ctx, "bench")
			require.NoError(b, err)
			require.Equal(b, int64(b.N), q.Counts[spool.StateSucceeded])
		})
	}
}
