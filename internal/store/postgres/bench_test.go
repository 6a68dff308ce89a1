package postgres_test

import (
	"context"
	"testing"

	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/postgres"
	"github.com/spoolq/spool/internal/store/storetest"
)

// BenchmarkStore runs the store benchmarks shared by every backend. Every
// write commits with synchronous_commit on, so the figures are bounded by
// the server's WAL flush latency. The pool has 16 connections, as many as
// the parallel benchmarks' goroutines on two CPUs.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return benchStore(b) })
}

func benchStore(b *testing.B) *postgres.Store {
	b.Helper()
	s, err := postgres.Open(context.Background(), testURL(b), postgres.Options{Schema: freshSchema(b), MaxConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}
