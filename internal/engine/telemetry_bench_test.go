package engine_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store/embedded"
)

// The cost of telemetry on the hot paths: the same work with it on and
// off, on the embedded store (fsync'd writes, as in production).
//
//	go test ./internal/engine -run '^$' -bench Telemetry -benchtime 3s

func benchEngine(b *testing.B, telemetry bool) *engine.Engine {
	b.Helper()
	st, err := embedded.Open(b.TempDir(), embedded.Options{})
	require.NoError(b, err)
	e, err := engine.New(engine.Config{Store: st, DisableTelemetry: !telemetry})
	require.NoError(b, err)
	require.NoError(b, e.Start(context.Background()))
	b.Cleanup(func() {
		e.Stop()
		require.NoError(b, st.Close())
	})
	return e
}

const benchBatch = 100

func BenchmarkTelemetry(b *testing.B) {
	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "on", false: "off"}[on]
		b.Run("EnqueueBatch100/telemetry="+name, func(b *testing.B) {
			e := benchEngine(b, on)
			ctx := context.Background()
			reqs := make([]spool.EnqueueRequest, benchBatch)
			for i := range reqs {
				reqs[i] = spool.EnqueueRequest{Type: "t", Payload: []byte(`{"n":1}`)}
			}
			for b.Loop() {
				if _, err := e.Enqueue(ctx, "q", reqs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "jobs/s")
		})
		b.Run("LeaseAck100/telemetry="+name, func(b *testing.B) {
			e := benchEngine(b, on)
			ctx := context.Background()
			reqs := make([]spool.EnqueueRequest, benchBatch)
			for i := range reqs {
				reqs[i] = spool.EnqueueRequest{Type: "t", Payload: []byte(`{"n":1}`)}
			}
			acks := make([]spool.Ack, benchBatch)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				if _, err := e.Enqueue(ctx, "q", reqs); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				jobs, err := e.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}, Max: benchBatch, Worker: "w"})
				if err != nil || len(jobs) != benchBatch {
					b.Fatal(err, len(jobs))
				}
				for i, j := range jobs {
					acks[i] = spool.Ack{ID: j.ID, Token: j.Lease.Token, Outcome: spool.OutcomeComplete}
				}
				if _, err := e.Ack(ctx, acks); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
