package embedded_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
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

// Benchmarks. Each write is fsynced before it returns, so the numbers are
// bounded by the disk's fsync latency; RunParallel shows group commit.

var benchPayload = json.RawMessage(`{"to":"ada@example.com","subject":"Your report is ready","report_id":12345,"locale":"en-GB"}`)

var benchSeq atomic.Int64

func benchJob(queue string) *store.Record {
	n := benchSeq.Add(1)
	return &store.Record{Job: spool.Job{
		ID:          fmt.Sprintf("0190a1b2-c3d4-7e5f-8a9b-%012d", n),
		Queue:       queue,
		Type:        "email.send",
		Payload:     benchPayload,
		State:       spool.StateReady,
		RunAt:       time.Unix(1_900_000_000, 0),
		MaxAttempts: 3,
		CreatedAt:   time.Unix(1_900_000_000, 0),
	}}
}

// BenchmarkInsert inserts one job per call from GOMAXPROCS*8 goroutines.
func BenchmarkInsert(b *testing.B) {
	s := open(b, b.TempDir())
	ctx := context.Background()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{benchJob("q")}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportJobsPerSec(b, 1)
}

// BenchmarkInsertSerial inserts one job per call from one goroutine: one
// fsync per job, the baseline for BenchmarkInsert.
func BenchmarkInsertSerial(b *testing.B) {
	s := open(b, b.TempDir())
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{benchJob("q")}}); err != nil {
			b.Fatal(err)
		}
	}
	reportJobsPerSec(b, 1)
}

// BenchmarkInsertBatch100 inserts 100 jobs per call from one goroutine.
func BenchmarkInsertBatch100(b *testing.B) {
	s := open(b, b.TempDir())
	ctx := context.Background()
	batch := make([]*store.Record, 100)
	b.ResetTimer()
	for b.Loop() {
		for i := range batch {
			batch[i] = benchJob("q")
		}
		if _, err := s.Insert(ctx, store.InsertParams{Jobs: batch}); err != nil {
			b.Fatal(err)
		}
	}
	reportJobsPerSec(b, 100)
}

// BenchmarkLeaseUpdate leases one job and completes it (two synced writes
// per job) from GOMAXPROCS*8 goroutines, on a queue filled beforehand.
func BenchmarkLeaseUpdate(b *testing.B) {
	s := open(b, b.TempDir())
	ctx := context.Background()
	for filled := 0; filled < b.N+1000; filled += 1000 {
		batch := make([]*store.Record, 1000)
		for i := range batch {
			batch[i] = benchJob("q")
		}
		if _, err := s.Insert(ctx, store.InsertParams{Jobs: batch}); err != nil {
			b.Fatal(err)
		}
	}
	var tokens atomic.Int64
	newToken := func() string { return strconv.FormatInt(tokens.Add(1), 10) }
	now := time.Unix(1_900_000_100, 0)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			recs, err := s.Lease(ctx, store.LeaseParams{
				Queues: []string{"q"}, Max: 1, Worker: "bench", Now: now, ExpiresAt: now.Add(time.Minute), NewToken: newToken,
			})
			if err != nil || len(recs) != 1 {
				b.Errorf("lease: %v (%d jobs)", err, len(recs))
				return
			}
			r := recs[0]
			r.State, r.FinishedAt, r.Token, r.Result = spool.StateSucceeded, &now, "", json.RawMessage(`{"ok":true}`)
			_, errs, err := s.Update(ctx, []store.Change{{Record: r}})
			if err != nil || errs[0] != nil {
				b.Errorf("update: %v %v", err, errs[0])
				return
			}
		}
	})
	reportJobsPerSec(b, 1)
}

// BenchmarkOpen100k measures rebuilding the indexes of 100,000 jobs.
func BenchmarkOpen100k(b *testing.B) {
	dir := b.TempDir()
	s, err := embedded.Open(dir, embedded.Options{})
	require.NoError(b, err)
	for range 100 {
		batch := make([]*store.Record, 1000)
		for i := range batch {
			batch[i] = benchJob("q")
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

func reportJobsPerSec(b *testing.B, perOp int) {
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N*perOp)/s, "jobs/s")
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
				r := benchJob("q")
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
