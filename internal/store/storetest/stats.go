package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func testTelemetry(t *testing.T, newStore NewStore) {
	const w = 10 * time.Second
	bucket := func(queue string, width time.Duration, start time.Duration, fill func(b *store.StatsBucket)) store.StatsBucket {
		b := store.StatsBucket{Queue: queue, Width: width, Start: at(start)}
		if fill != nil {
			fill(&b)
		}
		return b
	}

	t.Run("AddsUp", func(t *testing.T) {
		h := begin(t, newStore)
		d := bucket("a", w, 0, func(b *store.StatsBucket) {
			b.Arrivals, b.Succeeded, b.Dead, b.Cancelled, b.Retries = 1, 2, 3, 4, 5
			b.WaitCount, b.WaitSum = 2, 1.5
			b.WaitHist[0], b.WaitHist[store.HistBuckets-1] = 1, 1
			b.RunCount, b.RunSum = 1, 0.25
			b.RunHist[3] = 1
			b.Samples, b.DepthSum, b.ReadySum, b.ActiveSum = 1, 10, 7, 3
		})
		require.NoError(t, h.s.AddStats(h.ctx, []store.StatsBucket{d}))
		// The same bucket twice in one call, and once more in another.
		require.NoError(t, h.s.AddStats(h.ctx, []store.StatsBucket{d, d}))

		got, err := h.s.Stats(h.ctx, store.StatsParams{Queue: "a", Width: w, From: at(0), To: at(w)})
		require.NoError(t, err)
		require.Len(t, got, 1)
		want := d
		want.Add(&d)
		want.Add(&d)
		require.True(t, got[0].Start.Equal(at(0)), "start %v", got[0].Start)
		got[0].Start = want.Start
		require.Equal(t, want, got[0])
		require.Equal(t, int64(3), got[0].Arrivals)
		require.Equal(t, int64(3), got[0].WaitHist[store.HistBuckets-1])
		require.InDelta(t, 4.5, got[0].WaitSum, 1e-9)
	})

	t.Run("Selects", func(t *testing.T) {
		h := begin(t, newStore)
		one := func(b *store.StatsBucket) { b.Arrivals = 1 }
		require.NoError(t, h.s.AddStats(h.ctx, []store.StatsBucket{
			bucket("b", w, 20*time.Second, one),
			bucket("a", w, 0, one),
			bucket("a", w, 10*time.Second, one),
			bucket("a", w, 20*time.Second, one),
			bucket("a", w, 30*time.Second, one),
			bucket("a", 5*time.Minute, 0, one),
			bucket("a.b", w, 10*time.Second, one),
			bucket("c", w, 50*time.Second, one),
		}))
		type key struct {
			queue string
			start time.Time
		}
		keys := func(p store.StatsParams) []key {
			got, err := h.s.Stats(h.ctx, p)
			require.NoError(t, err)
			out := []key{}
			for _, b := range got {
				require.Equal(t, p.Width, b.Width)
				out = append(out, key{b.Queue, b.Start.UTC()})
			}
			return out
		}
		// One queue, [From, To): the bucket starting at To is out.
		require.Equal(t, []key{{"a", at(10 * time.Second)}, {"a", at(20 * time.Second)}},
			keys(store.StatsParams{Queue: "a", Width: w, From: at(10 * time.Second), To: at(30 * time.Second)}))
		// Every queue, by queue then start.
		require.Equal(t, []key{{"a", at(10 * time.Second)}, {"a", at(20 * time.Second)}, {"a.b", at(10 * time.Second)}, {"b", at(20 * time.Second)}},
			keys(store.StatsParams{Width: w, From: at(10 * time.Second), To: at(30 * time.Second)}))
		// Another width.
		require.Equal(t, []key{{"a", at(0)}}, keys(store.StatsParams{Width: 5 * time.Minute, From: at(0), To: at(time.Hour)}))
		// Nothing in range.
		require.Empty(t, keys(store.StatsParams{Queue: "nope", Width: w, From: at(0), To: at(time.Hour)}))
	})

	t.Run("Purge", func(t *testing.T) {
		h := begin(t, newStore)
		one := func(b *store.StatsBucket) { b.Arrivals = 1 }
		require.NoError(t, h.s.AddStats(h.ctx, []store.StatsBucket{
			bucket("a", w, 0, one),
			bucket("a", w, 10*time.Second, one),
			bucket("b", w, 0, one),
			bucket("b", w, 20*time.Second, one),
			bucket("a", 5*time.Minute, 0, one),
		}))
		n, err := h.s.PurgeStats(h.ctx, w, at(20*time.Second))
		require.NoError(t, err)
		require.Equal(t, 3, n)
		got, err := h.s.Stats(h.ctx, store.StatsParams{Width: w, From: at(-time.Hour), To: at(time.Hour)})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "b", got[0].Queue)
		// The other width is untouched.
		got, err = h.s.Stats(h.ctx, store.StatsParams{Width: 5 * time.Minute, From: at(-time.Hour), To: at(time.Hour)})
		require.NoError(t, err)
		require.Len(t, got, 1)
		n, err = h.s.PurgeStats(h.ctx, w, at(20*time.Second))
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("Invalid", func(t *testing.T) {
		h := begin(t, newStore)
		err := h.s.AddStats(h.ctx, []store.StatsBucket{{Width: w, Start: at(0), Arrivals: 1}})
		require.True(t, errors.Is(err, spool.ErrInvalid), "no queue: %v", err)
		err = h.s.AddStats(h.ctx, []store.StatsBucket{{Queue: "a", Start: at(0), Arrivals: 1}})
		require.True(t, errors.Is(err, spool.ErrInvalid), "no width: %v", err)
		_, err = h.s.Stats(h.ctx, store.StatsParams{Queue: "a", From: at(0), To: at(time.Hour)})
		require.True(t, errors.Is(err, spool.ErrInvalid), "no width: %v", err)
		got, err := h.s.Stats(h.ctx, store.StatsParams{Width: w, From: at(-time.Hour), To: at(time.Hour)})
		require.NoError(t, err)
		require.Empty(t, got, "a refused delta stores nothing")
	})
}
