package storetest

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
)

// Bench runs the store benchmarks, the same for every backend, each on a
// fresh store from newStore. Every write is durable before it returns, so
// the figures are bounded by the backend's sync latency; the parallel ones
// show its group commit. Each reports jobs/s.
func Bench(b *testing.B, newStore func(b *testing.B) store.Store) {
	// One job per call from GOMAXPROCS*8 goroutines, without and with the
	// admission check the engine always asks for.
	b.Run("Insert", func(b *testing.B) { benchInsert(b, newStore(b), nil) })
	b.Run("InsertMaxDepth", func(b *testing.B) { benchInsert(b, newStore(b), map[string]int64{"q": 1 << 40}) })
	// One job per call from one goroutine: one sync per job, the baseline.
	b.Run("InsertSerial", func(b *testing.B) {
		s, ctx := newStore(b), context.Background()
		for b.Loop() {
			if _, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{BenchJob("q")}}); err != nil {
				b.Fatal(err)
			}
		}
		reportJobsPerSec(b, 1)
	})
	// 100 jobs per call from one goroutine.
	b.Run("InsertBatch100", func(b *testing.B) { benchInsertBatch(b, newStore(b), false) })
	// The same with an idempotency key on every job, as the SDK sends.
	b.Run("InsertBatch100Keyed", func(b *testing.B) { benchInsertBatch(b, newStore(b), true) })
	// 100 jobs per call from GOMAXPROCS*2 goroutines (4 on two CPUs, as
	// the producers of spool bench's enqueue_batch), with the admission
	// check the engine asks for.
	b.Run("InsertBatch100Parallel", func(b *testing.B) { benchInsertBatchParallel(b, newStore(b)) })
	// Lease one job and complete it (two durable writes per job) from
	// GOMAXPROCS*8 goroutines, on a queue filled beforehand.
	b.Run("LeaseUpdate", func(b *testing.B) { benchLeaseUpdate(b, newStore(b)) })
}

var benchPayload = json.RawMessage(`{"to":"ada@example.com","subject":"Your report is ready","report_id":12345,"locale":"en-GB"}`)

var benchSeq atomic.Int64

// BenchJob returns a new ready job of about 100 bytes of payload, with a
// unique id.
func BenchJob(queue string) *store.Record {
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

func benchInsert(b *testing.B, s store.Store, maxDepth map[string]int64) {
	ctx := context.Background()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Insert(ctx, store.InsertParams{Jobs: []*store.Record{BenchJob("q")}, MaxDepth: maxDepth}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportJobsPerSec(b, 1)
}

func benchLeaseUpdate(b *testing.B, s store.Store) {
	ctx := context.Background()
	for filled := 0; filled < b.N+1000; filled += 1000 {
		batch := make([]*store.Record, 1000)
		for i := range batch {
			batch[i] = BenchJob("q")
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

// benchInsertBatch inserts batches of 100 jobs, with an idempotency key on
// each when keyed.
func benchInsertBatch(b *testing.B, s store.Store, keyed bool) {
	ctx := context.Background()
	batch := make([]*store.Record, 100)
	for b.Loop() {
		for i := range batch {
			batch[i] = BenchJob("q")
			if keyed {
				batch[i].IdempotencyKey = "k-" + batch[i].ID
			}
		}
		if _, err := s.Insert(ctx, store.InsertParams{Jobs: batch, MaxDepth: map[string]int64{"q": 1 << 40}}); err != nil {
			b.Fatal(err)
		}
	}
	reportJobsPerSec(b, 100)
}

func benchInsertBatchParallel(b *testing.B, s store.Store) {
	ctx := context.Background()
	maxDepth := map[string]int64{"q": 1 << 40}
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		batch := make([]*store.Record, 100)
		for pb.Next() {
			for i := range batch {
				batch[i] = BenchJob("q")
			}
			if _, err := s.Insert(ctx, store.InsertParams{Jobs: batch, MaxDepth: maxDepth}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportJobsPerSec(b, 100)
}
