package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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

func TestRate(t *testing.T) {
	t.Parallel()
	var r rate
	at := time.Unix(1000, 0)
	for i := 0; i < 60; i++ {
		r.add(at.Add(time.Duration(i)*time.Second), 2)
	}
	require.InDelta(t, 2.0, r.perSec(at.Add(59*time.Second)), 1e-9)
	require.InDelta(t, 0.0, r.perSec(at.Add(10*time.Minute)), 1e-9, "old buckets age out")
}
