package bench

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/server"
)

// memTarget is an in-memory queue system: enough to exercise the scenarios
// without a server.
type memTarget struct {
	mu     sync.Mutex
	queues map[string]*memQueue
}

type memQueue struct {
	ch      chan []byte
	mu      sync.Mutex
	pending int64
	max     int64
}

var errMemFull = errors.New("mem: queue full")

func (m *memTarget) q(name string) *memQueue {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.queues == nil {
		m.queues = map[string]*memQueue{}
	}
	q := m.queues[name]
	if q == nil {
		q = &memQueue{ch: make(chan []byte, 1<<14)}
		m.queues[name] = q
	}
	return q
}

func (m *memTarget) Name() string       { return "mem" }
func (m *memTarget) Durability() string { return "none" }

func (m *memTarget) Enqueue(ctx context.Context, queue string, payload []byte) error {
	return m.EnqueueBatch(ctx, queue, [][]byte{payload})
}

func (m *memTarget) EnqueueBatch(ctx context.Context, queue string, payloads [][]byte) error {
	q := m.q(queue)
	q.mu.Lock()
	if q.max > 0 && q.pending+int64(len(payloads)) > q.max {
		q.mu.Unlock()
		time.Sleep(50 * time.Microsecond) // a refusal costs a round trip
		return errMemFull
	}
	q.pending += int64(len(payloads))
	q.mu.Unlock()
	for _, p := range payloads {
		q.ch <- p
	}
	return nil
}

// EnqueueDelayed implements Delayer: the job enters the queue after delay.
func (m *memTarget) EnqueueDelayed(ctx context.Context, queue string, payload []byte, delay time.Duration) error {
	q := m.q(queue)
	q.mu.Lock()
	q.pending++
	q.mu.Unlock()
	time.AfterFunc(delay, func() { q.ch <- payload })
	return nil
}

func (m *memTarget) Work(ctx context.Context, queue string, workers int, h Handler) error {
	q := m.q(queue)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-q.ch:
					_ = h(ctx, p)
					q.mu.Lock()
					q.pending--
					q.mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func (m *memTarget) Pending(ctx context.Context, queue string) (int64, error) {
	q := m.q(queue)
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending, nil
}

func (m *memTarget) Close() error { return nil }

// boundedMem adds queue bounds, and its own process as the "server".
type boundedMem struct{ memTarget }

func (b *boundedMem) SetMaxDepth(ctx context.Context, queue string, depth int64) error {
	q := b.q(queue)
	q.mu.Lock()
	q.max = depth
	q.mu.Unlock()
	return nil
}

func (b *boundedMem) IsFull(err error) bool { return errors.Is(err, errMemFull) }
func (b *boundedMem) ServerPID() int        { return os.Getpid() }

func tinyOptions() Options {
	o := QuickOptions()
	o.Duration = 300 * time.Millisecond
	return o
}

// checkFigures fails unless every scenario of r produced figures: jobs/s
// above 0, latency metrics present, back pressure that both accepted and
// refused jobs.
func checkFigures(t *testing.T, r *Report, runs int, wantRSS bool) {
	t.Helper()
	require.Len(t, r.Scenarios, len(Scenarios))
	for i, s := range r.Scenarios {
		require.Equal(t, Scenarios[i], s.Name)
		require.Empty(t, s.Skipped, s.Name)
		for name, m := range s.Metrics {
			require.Len(t, m.Runs, runs, "%s %s", s.Name, name)
			require.LessOrEqual(t, m.Min, m.Median, "%s %s", s.Name, name)
			require.LessOrEqual(t, m.Median, m.Max, "%s %s", s.Name, name)
		}
		var want []string
		switch s.Name {
		case ScenarioEnqueueSingle:
			want = []string{MetricJobsPerSec, MetricEnqueueP50, MetricEnqueueP99}
		case ScenarioEnqueueBatch:
			want = []string{MetricJobsPerSec, MetricBatchP50, MetricBatchP99}
		case ScenarioProcess:
			want = []string{MetricJobsPerSec}
		case ScenarioLatency:
			want = []string{MetricE2EP50, MetricE2EP99, MetricE2EP999, MetricE2EMax, MetricEnqueueP50, MetricEnqueueP99, MetricAcceptedPerSec}
		case ScenarioDelayed:
			want = []string{MetricLateP50, MetricLateP99, MetricLateMax}
		case ScenarioBackpressure:
			want = []string{MetricAcceptedPerSec, MetricRejectedPerSec, MetricRejectP50, MetricRejectP99, MetricPeakPending}
			if wantRSS {
				want = append(want, MetricRSSStart, MetricRSSPeak, MetricRSSEnd)
			}
		}
		for _, name := range want {
			require.Contains(t, s.Metrics, name, s.Name)
		}
		for _, name := range []string{MetricJobsPerSec, MetricAcceptedPerSec, MetricRejectedPerSec, MetricEnqueueP50, MetricBatchP50} {
			if m, ok := s.Metrics[name]; ok {
				require.Positive(t, m.Min, "%s %s", s.Name, name)
			}
		}
	}
}

func TestRunMem(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	o := tinyOptions()
	o.Runs = 2
	o.Progress = func(scenario string, run, done, total int) {
		calls.Add(1)
		if done > total || run < 1 || run > 2 {
			t.Errorf("progress %s run %d: %d of %d", scenario, run, done, total)
		}
	}
	r, err := Run(context.Background(), &boundedMem{}, o)
	require.NoError(t, err)
	checkFigures(t, r, 2, true)
	require.Equal(t, "mem", r.System)
	require.Equal(t, "2", r.Params["runs"])
	require.Positive(t, calls.Load())
	bp := r.Scenarios[4].Metrics
	require.LessOrEqual(t, bp[MetricPeakPending].Max, float64(o.MaxDepth))
}

func TestRunSkipsBackpressureWhenUnbounded(t *testing.T) {
	t.Parallel()
	o := tinyOptions()
	o.Scenarios = []string{ScenarioBackpressure, ScenarioEnqueueSingle}
	r, err := Run(context.Background(), &memTarget{}, o)
	require.NoError(t, err)
	require.Len(t, r.Scenarios, 2)
	require.Equal(t, ScenarioEnqueueSingle, r.Scenarios[0].Name, "scenarios run in their fixed order")
	require.Contains(t, r.Scenarios[1].Skipped, "bench.Bounded")
	require.Empty(t, r.Scenarios[1].Metrics)
}

// failing refuses the enqueues of second runs with an error that is not
// "full".
type failing struct{ memTarget }

func (f *failing) Enqueue(ctx context.Context, queue string, payload []byte) error {
	if strings.HasSuffix(queue, "-2") {
		return errors.New("disk on fire")
	}
	return f.memTarget.Enqueue(ctx, queue, payload)
}

func TestRunReportsErrors(t *testing.T) {
	t.Parallel()
	o := tinyOptions()
	o.Runs = 2
	r, err := Run(context.Background(), &failing{}, o)
	require.ErrorContains(t, err, "enqueue_single, run 2 of 2: Enqueue: disk on fire")
	require.Len(t, r.Scenarios, 1, "Run stops at the failed scenario")
	require.Equal(t, []float64{r.Scenarios[0].Metrics[MetricJobsPerSec].Median},
		r.Scenarios[0].Metrics[MetricJobsPerSec].Runs, "the runs that succeeded are kept")
}

func TestRunSpoolInProcess(t *testing.T) {
	t.Parallel()
	srv, err := server.New(context.Background(), server.Config{DataDir: t.TempDir()})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		require.NoError(t, srv.Close())
	})
	target, err := NewSpoolTarget(SpoolConfig{URL: ts.URL, PID: os.Getpid()})
	require.NoError(t, err)
	defer target.Close()
	o := tinyOptions()
	o.Producers = 8
	r, err := Run(context.Background(), target, o)
	require.NoError(t, err)
	require.Equal(t, "spool", r.System)
	require.Equal(t, SpoolDurability, r.Durability)
	checkFigures(t, r, 1, true)
}
