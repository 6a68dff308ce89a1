package embedded_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/embedded"
	"github.com/spoolq/spool/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(t testing.TB, dir string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir, embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T, dir string) store.Store { return open(t, dir) })
}

func TestOpenTwiceFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open(t, dir)
	_, err := embedded.Open(dir, embedded.Options{})
	require.Error(t, err, "the directory is locked by the first store")
}

// BenchmarkStore runs the store benchmarks shared by every backend. Each
// write is fsynced before it returns.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return open(b, b.TempDir()) })
}

// BenchmarkOpen100k measures rebuilding the indexes of 100,000 jobs.
func BenchmarkOpen100k(b *testing.B) { benchOpen(b, spool.StateReady) }

// BenchmarkOpenFinished100k measures opening a store that keeps 100,000
// finished jobs.
func BenchmarkOpenFinished100k(b *testing.B) { benchOpen(b, spool.StateSucceeded) }

func benchOpen(b *testing.B, st spool.State) {
	dir := b.TempDir()
	s, err := embedded.Open(dir, embedded.Options{})
	require.NoError(b, err)
	finished := time.Now()
	for range 100 {
		batch := make([]*store.Record, 1000)
		for i := range batch {
			batch[i] = storetest.BenchJob("q")
			if st.Terminal() {
				batch[i].State, batch[i].ReadyAt, batch[i].FinishedAt = st, nil, &finished
			}
		}
		_, err := s.Insert(context.Background(), store.InsertParams{Jobs: batch})
		require.NoError(b, err)
	}
	require.NoError(b, s.Close())
	for b.Loop() {
		s, err := embedded.Open(dir, embedded.Options{})
		require.NoError(b, err)
		require.NoError(b, s.Close())
	}
}

// Close while writers run: each write either succeeds (and is on disk after
// a reopen) or fails with ErrUnavailable; nothing panics.
func TestCloseDuringWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := embedded.Open(dir, embedded.Options{})
	require.NoError(t, err)
	ctx := t.Context()
	const writers = 8
	acked := make([][]string, writers)
	errs := make([]error, writers)
	started := make(chan struct{}, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				r := storetest.BenchJob("q")
				_, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{r}})
				if err != nil {
					if !errors.Is(err, spool.ErrUnavailable) {
						errs[w] = err
					}
					return
				}
				acked[w] = append(acked[w], r.ID)
				if i == 10 {
					started <- struct{}{}
				}
			}
		})
	}
	for range writers {
		<-started
	}
	require.NoError(t, s.Close())
	wg.Wait()

	s = open(t, dir)
	n := 0
	for w := range writers {
		require.NoError(t, errs[w])
		for _, id := range acked[w] {
			_, err := s.Get(ctx, id)
			require.NoError(t, err, "acknowledged job %s lost", id)
			n++
		}
	}
	q, err := s.Queue(ctx, "q")
	require.NoError(t, err)
	require.EqualValues(t, n, q.Counts[spool.StateReady], "nothing but acknowledged jobs")
}

// BenchmarkHeapPerReadyJob reports the live heap each job not yet finished
// takes in the indexes (heap_B/job): inserted in batches as the server
// does, measured after a collection. Payloads are not on the Go heap
// (Pebble keeps its memtable outside it).
func BenchmarkHeapPerReadyJob(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		s, err := embedded.Open(b.TempDir(), embedded.Options{})
		require.NoError(b, err)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n / 1000 {
			batch := make([]*store.Record, 1000)
			for i := range batch {
				batch[i] = storetest.BenchJob("q")
			}
			_, err := s.Insert(context.Background(), store.InsertParams{Jobs: batch})
			require.NoError(b, err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap_B/job")
		require.NoError(b, s.Close())
	}
}
