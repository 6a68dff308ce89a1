package multinode

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// Throughput measurement, not a test: it runs only with SPOOL_MEASURE=1.
//
//	SPOOL_MEASURE=1 scripts/with-postgres go test -run TestMeasureThroughput -v -timeout 20m ./test/multinode/
//
// For each setup (the embedded store; PostgreSQL with one node; PostgreSQL
// with three nodes on one schema) it starts real `spool serve` processes
// and measures, three times each, over HTTP with the Go client:
//
//   - enqueue, single: measureProducers goroutines, each one job per
//     request, for measureFor;
//   - enqueue, batch: measureBatchers goroutines, 100 jobs per request;
//   - lease->complete: measureWorkers goroutines, each leasing up to 10
//     jobs and acknowledging them in one batch ack, on a queue filled
//     beforehand.
//
// Clients are spread evenly over the nodes, and the same in every setup.
// It reports the median of the three runs in jobs per second. Everything
// (the database, the nodes, the clients) shares this machine's CPUs.
const (
	measureFor       = 3 * time.Second
	measureRuns      = 3
	measureProducers = 24
	measureBatchers  = 6
	measureWorkers   = 12
	measurePrefill   = 30_000
)

func TestMeasureThroughput(t *testing.T) {
	if os.Getenv("SPOOL_MEASURE") != "1" {
		t.Skip("a measurement, not a test: set SPOOL_MEASURE=1 to run it")
	}
	base := needPostgres(t)
	setups := []struct {
		name  string
		nodes func(t *testing.T) []*node
	}{
		{"embedded, 1 node", func(t *testing.T) []*node { return []*node{startNode(t, "e0", "--data", t.TempDir())} }},
		{"postgres, 1 node", func(t *testing.T) []*node {
			u, _ := freshSchema(t, base)
			return []*node{startNode(t, "p0", "--store", u)}
		}},
		{"postgres, 3 nodes", func(t *testing.T) []*node {
			u, _ := freshSchema(t, base)
			return startNodes(t, 3, u)
		}},
	}
	type result struct{ single, batch, process []float64 }
	results := make([]result, len(setups))
	for i, s := range setups {
		t.Run(strings.ReplaceAll(s.name, " ", ""), func(t *testing.T) {
			nodes := s.nodes(t)
			clients := make([]*client.Client, len(nodes))
			for k, n := range nodes {
				clients[k] = newClient(t, n, client.WithRetryPolicy(client.NoRetry), client.WithTimeout(30*time.Second))
			}
			for run := range measureRuns {
				q := fmt.Sprintf("m%d", run)
				r := &results[i]
				r.single = append(r.single, measureEnqueue(t, clients, q+"s", measureProducers, 1))
				r.batch = append(r.batch, measureEnqueue(t, clients, q+"b", measureBatchers, 100))
				prefill(t, clients[0], q+"p", measurePrefill)
				r.process = append(r.process, measureProcess(t, clients, q+"p"))
				t.Logf("run %d: single %.0f/s, batch %.0f/s, lease->complete %.0f/s", run+1,
					r.single[run], r.batch[run], r.process[run])
			}
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nmedian of %d runs, jobs/s (%d producers single, %d producers batch of 100, %d workers max 10 + batch ack; %s each):\n",
		measureRuns, measureProducers, measureBatchers, measureWorkers, measureFor)
	fmt.Fprintf(&b, "%-20s %16s %16s %18s\n", "setup", "enqueue single", "enqueue batch", "lease->complete")
	for i, s := range setups {
		r := results[i]
		fmt.Fprintf(&b, "%-20s %16.0f %16.0f %18.0f\n", s.name, median(r.single), median(r.batch), median(r.process))
	}
	t.Log(b.String())
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// measureEnqueue runs n producers spread over the clients, each sending
// jobs of per jobs per request for measureFor, and returns jobs/s.
func measureEnqueue(t *testing.T, clients []*client.Client, queue string, n, per int) float64 {
	t.Helper()
	var done atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(measureFor)
	payload := []byte(`{"to":"ada@example.com","subject":"Your report is ready","report_id":12345}`)
	for i := range n {
		c := clients[i%len(clients)]
		wg.Go(func() {
			reqs := make([]spool.EnqueueRequest, per)
			for k := range reqs {
				reqs[k] = spool.EnqueueRequest{Type: "m", Payload: payload}
			}
			for time.Now().Before(deadline) {
				var err error
				if per == 1 {
					_, _, err = c.Enqueue(ctx, queue, reqs[0])
				} else {
					_, err = c.EnqueueBatch(ctx, queue, reqs)
				}
				if err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
				done.Add(int64(per))
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

// prefill enqueues n jobs in batches of 500.
func prefill(t *testing.T, c *client.Client, queue string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			reqs := make([]spool.EnqueueRequest, 500)
			for k := range reqs {
				reqs[k] = spool.EnqueueRequest{Type: "m", Payload: []byte(`{"n":1}`)}
			}
			for k := w * 500; k < n; k += 4 * 500 {
				if _, err := c.EnqueueBatch(context.Background(), queue, reqs); err != nil {
					t.Errorf("prefill: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// measureProcess runs measureWorkers workers spread over the clients for
// measureFor (or until the queue is empty) and returns jobs/s.
func measureProcess(t *testing.T, clients []*client.Client, queue string) float64 {
	t.Helper()
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(measureFor)
	var lastMu sync.Mutex
	last := start
	for i := range measureWorkers {
		c := clients[i%len(clients)]
		wg.Go(func() {
			lease := spool.Duration(time.Minute)
			for time.Now().Before(deadline) {
				jobs, err := c.Lease(context.Background(), spool.LeaseRequest{Queues: []string{queue}, Max: 10, Lease: &lease, Worker: fmt.Sprintf("m%d", i)})
				if err != nil {
					t.Errorf("lease: %v", err)
					return
				}
				if len(jobs) == 0 {
					return // drained
				}
				acks := make([]spool.Ack, len(jobs))
				for k, j := range jobs {
					acks[k] = spool.Ack{ID: j.ID, Token: j.Lease.Token, Outcome: spool.OutcomeComplete}
				}
				res, err := c.Ack(context.Background(), acks)
				if err != nil {
					t.Errorf("ack: %v", err)
					return
				}
				for _, r := range res {
					if r.Error != nil {
						t.Errorf("ack of %s: %s", r.ID, r.Error.Message)
						return
					}
				}
				done.Add(int64(len(jobs)))
				lastMu.Lock()
				last = time.Now()
				lastMu.Unlock()
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / last.Sub(start).Seconds()
}
