package engine

import (
	"testing"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// BenchmarkTelemetryPerJob is what the telemetry adds to one job's life on
// the hot path: its arrival, its wait when leased, its run and finish.
// Compare with the engine's cost per job (BenchmarkTelemetry).
func BenchmarkTelemetryPerJob(b *testing.B) {
	var t telemetry
	now := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	ready := now.Add(-time.Second)
	started := now.Add(-time.Millisecond)
	rec := &store.Record{Job: spool.Job{Queue: "q", State: spool.StateSucceeded, ReadyAt: &ready, StartedAt: &started}}
	recs := []*store.Record{rec}
	for b.Loop() {
		t.arrived("q", now, 1)
		t.waited(recs, now)
		t.left(spool.StateActive, rec, now)
	}
}
