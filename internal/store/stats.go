package store

import (
	"context"
	"time"
)

// Telemetry stores per-queue statistics in time buckets. Every node adds
// what it counted to the same buckets, so every node reads the same
// merged figures. The engine decides the buckets (their width and start);
// the store only adds and reads.
type Telemetry interface {
	// AddStats adds each delta to the stored bucket of its (Queue, Width,
	// Start), creating the bucket: every count, sum and histogram bucket
	// is added, atomically per delta and across nodes.
	AddStats(ctx context.Context, deltas []StatsBucket) error
	// Stats returns the buckets of one width that start in [From, To),
	// sorted by queue, then start; Queue "" is every queue.
	Stats(ctx context.Context, p StatsParams) ([]StatsBucket, error)
	// PurgeStats deletes the buckets of one width that start before
	// before, and returns how many.
	PurgeStats(ctx context.Context, width time.Duration, before time.Time) (int, error)
}

// StatsParams selects buckets.
type StatsParams struct {
	Queue    string
	Width    time.Duration
	From, To time.Time
}

// HistBuckets is the number of buckets of a StatsBucket's histograms
// (their bounds are the engine's).
const HistBuckets = 24

// StatsBucket is what happened to one queue in one time bucket.
type StatsBucket struct {
	Queue string
	Width time.Duration
	Start time.Time

	Arrivals  int64
	Succeeded int64
	Dead      int64
	Cancelled int64
	Retries   int64

	// Wait (ready to started) and Run (started to finished) per attempt:
	// how many, their sum in seconds, and a histogram.
	WaitCount int64
	WaitSum   float64
	WaitHist  [HistBuckets]int64
	RunCount  int64
	RunSum    float64
	RunHist   [HistBuckets]int64

	// Samples of the queue's jobs not terminal, ready and active, and how
	// many samples were taken (their means are the time averages).
	Samples   int64
	DepthSum  int64
	ReadySum  int64
	ActiveSum int64
}

// Add adds o's figures to b (not its key).
func (b *StatsBucket) Add(o *StatsBucket) {
	b.Arrivals += o.Arrivals
	b.Succeeded += o.Succeeded
	b.Dead += o.Dead
	b.Cancelled += o.Cancelled
	b.Retries += o.Retries
	b.WaitCount += o.WaitCount
	b.WaitSum += o.WaitSum
	b.RunCount += o.RunCount
	b.RunSum += o.RunSum
	for i := range b.WaitHist {
		b.WaitHist[i] += o.WaitHist[i]
		b.RunHist[i] += o.RunHist[i]
	}
	b.Samples += o.Samples
	b.DepthSum += o.DepthSum
	b.ReadySum += o.ReadySum
	b.ActiveSum += o.ActiveSum
}

// Empty reports whether b holds no figures.
func (b *StatsBucket) Empty() bool {
	z := StatsBucket{Queue: b.Queue, Width: b.Width, Start: b.Start}
	return *b == z
}
