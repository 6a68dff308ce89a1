package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/postgres"
)

// Benchmarks, the same as the embedded store's. Every write commits with
// synchronous_commit on, so the numbers are bounded by the server's WAL
// flush latency; RunParallel shows its group commit. The pool has 16
// connections, as many as RunParallel's goroutines on two CPUs.

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

func benchStore(b *testing.B) *postgres.Store {
	b.Helper()
	url := testURL(b)
	schema := freshSchema(b)
	s, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema, MaxConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkInsert inserts one job per call from GOMAXPROCS*8 goroutines.
func BenchmarkInsert(b *testing.B) {
	benchInsert(b, nil)
}

// BenchmarkInsertMaxDepth is BenchmarkInsert with the admission check the
// engine always asks for: inserts into one queue serialize on its lock.
func BenchmarkInsertMaxDepth(b *testing.B) {
	benchInsert(b, map[string]int64{"q": 1 << 40})
}

func benchInsert(b *testing.B, maxDepth map[string]int64) {
	s := benchStore(b)
	ctx := context.Background()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{benchJob("q")}, MaxDepth: maxDepth}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportJobsPerSec(b, 1)
}

// BenchmarkInsertSerial inserts one job per call from one goroutine: one
// commit per job, the baseline for BenchmarkInsert.
func BenchmarkInsertSerial(b *testing.B) {
	s := benchStore(b)
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
	s := benchStore(b)
	ctx := context.Background()
	batch := make([]*store.Record, 100)
	b.ResetTimer()
	for b.Loop() {
		for i := range batch {
			batch[i] = benchJob("q")
		}
		if _, err := s.Insert(ctx, store.InsertParams{Jobs: batch, MaxDepth: map[string]int64{"q": 1 << 40}}); err != nil {
			b.Fatal(err)
		}
	}
	reportJobsPerSec(b, 100)
}

// BenchmarkLeaseUpdate leases one job and completes it (two commits per
// job) from GOMAXPROCS*8 goroutines, on a queue filled beforehand.
func BenchmarkLeaseUpdate(b *testing.B) {
	s := benchStore(b)
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

func reportJobsPerSec(b *testing.B, perOp int) {
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N*perOp)/s, "jobs/s")
	}
}
