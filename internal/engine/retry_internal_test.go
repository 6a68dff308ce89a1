package engine

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/internal/store"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		n         int
		base, max time.Duration
		rnd       float64
		want      time.Duration
	}{
		{1, 5 * time.Second, time.Hour, 1, 5 * time.Second},
		{1, 5 * time.Second, time.Hour, 0, 2500 * time.Millisecond},
		{2, 5 * time.Second, time.Hour, 1, 10 * time.Second},
		{11, 5 * time.Second, time.Hour, 1, time.Hour},
		{100, 5 * time.Second, time.Hour, 1, time.Hour},
		{3, 0, time.Hour, 1, 0},
	}
	for _, c := range cases {
		require.Equal(t, c.want, backoffDelay(c.n, c.base, c.max, c.rnd), "%+v", c)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	require.Equal(t, 60, retryAfter(100, 100, 1, 0, time.Minute), "no drain seen: the window")
	require.Equal(t, 1, retryAfter(100, 100, 1, 50, time.Minute), "fast drain: at least 1s")
	require.Equal(t, 10, retryAfter(100, 100, 10, 1, time.Minute))
	require.Equal(t, 300, retryAfter(1e6, 10, 1, 0.01, time.Minute), "capped")
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	var h [store.HistBuckets]int64
	require.Zero(t, quantile(&h, 0.5), "no data")
	// Ten durations in (0.5s, 1s]: linear within the bucket.
	h[histIndex(0.75)] = 10
	require.Equal(t, 9, histIndex(0.75))
	require.Equal(t, 9, histIndex(1), "a bound belongs to the bucket below it")
	require.InDelta(t, 0.75, quantile(&h, 0.5), 1e-9)
	require.InDelta(t, 0.995, quantile(&h, 0.99), 1e-9)
	// Ten more in (1s, 2.5s]: the median is the top of the first bucket.
	h[histIndex(2)] = 10
	require.InDelta(t, 1.0, quantile(&h, 0.5), 1e-9)
	require.InDelta(t, 1+1.5*9/10.0, quantile(&h, 0.95), 1e-9)
	// The open last bucket answers its lower bound.
	var o [store.HistBuckets]int64
	o[histIndex(1e6)] = 1
	require.Equal(t, store.HistBuckets-1, histIndex(1e6))
	require.InDelta(t, 25000, quantile(&o, 0.99), 1e-9)
}

func TestErlangC(t *testing.T) {
	t.Parallel()
	// M/M/1 at ρ = 0.5: P(wait) = ρ; mean wait ρ/(μ−λ) = 1s with μ = 1.
	require.InDelta(t, 0.5, erlangC(1, 0.5), 1e-12)
	require.InDelta(t, 1.0, meanWaitMMc(1, 0.5, 1), 1e-12)
	// c = 2, a = 1: C = (1/2·2)/(1 + 1 + 1) = 1/3; mean wait 1/3 / (2−1).
	require.InDelta(t, 1/3.0, erlangC(2, 1), 1e-12)
	require.InDelta(t, 1/3.0, meanWaitMMc(2, 1, 1), 1e-12)
	// c = 3, a = 1: C = (1/6·3/2)/(1 + 1 + 1/2 + 1/4) = 1/11; wait 1/22.
	require.InDelta(t, 1/11.0, erlangC(3, 1), 1e-12)
	require.True(t, math.IsInf(meanWaitMMc(1, 1, 1), 1), "c = a never keeps up")

	needed, least := workersFor(1, 1, 0.5)
	require.Equal(t, 2, needed, "1/3s <= 0.5s with 2 workers")
	require.Equal(t, 2, least)
	needed, _ = workersFor(1, 1, 0.2)
	require.Equal(t, 3, needed, "1/3s > 0.2s with 2, 1/22s with 3")
	needed, least = workersFor(0, 1, 1)
	require.Zero(t, needed)
	require.Zero(t, least)
	// A large load: enough workers, and more for a tighter target.
	loose, least := workersFor(1000, 0.5, 1)
	tight, _ := workersFor(1000, 0.5, 0.001)
	require.Equal(t, 501, least)
	require.GreaterOrEqual(t, loose, least)
	require.Greater(t, tight, loose)
}
