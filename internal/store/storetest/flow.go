package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func orderingKey(k string) func(r *store.Record) { return func(r *store.Record) { r.OrderingKey = k } }

// leaseLimited leases from queues with limits at now, and reports the
// earliest next-token time the store gave (zero: none).
func (h *h) leaseLimited(queues []string, max int, now time.Time, limits map[string]store.QueueLimits) ([]*store.Record, time.Time) {
	h.t.Helper()
	var (
		mu   sync.Mutex
		next time.Time
	)
	recs, err := h.s.Lease(h.ctx, store.LeaseParams{
		Queues: queues, Max: max, Worker: "w1", Now: now, ExpiresAt: now.Add(30 * time.Second), NewToken: newToken,
		Limits: limits,
		Throttled: func(_ string, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			if next.IsZero() || at.Before(next) {
				next = at
			}
		},
	})
	require.NoError(h.t, err)
	require.LessOrEqual(h.t, len(recs), max)
	return recs, next
}

// retryLater turns an active job into a scheduled one (a failed attempt
// waiting for its backoff).
func (h *h) retryLater(id string, runAt time.Time) {
	h.t.Helper()
	r := h.get(id)
	r.State, r.RunAt, r.ReadyAt, r.Token, r.LeaseExpiresAt = spool.StateScheduled, runAt, nil, "", nil
	h.update(r)
}

func testFlow(t *testing.T, newStore NewStore) {
	t.Run("OrderingKeyOneAtATimeInOrder", func(t *testing.T) {
		h := begin(t, newStore)
		a1, a2, a3 := job("q", orderingKey("a")), job("q", orderingKey("a")), job("q", orderingKey("a"))
		b1, u1 := job("q", orderingKey("b")), job("q")
		h.insert(a1, a2)
		h.insert(a3, b1, u1)
		got := h.lease([]string{"q"}, 10, t0)
		require.Equal(t, []string{a1.ID, b1.ID, u1.ID}, ids(got), "one job per key, keys in parallel, unkeyed unaffected")
		require.Empty(t, h.lease([]string{"q"}, 10, t0), "the key's next job waits for its head")

		h.finish(a1.ID, spool.StateSucceeded, at(time.Second))
		require.Equal(t, []string{a2.ID}, ids(h.lease([]string{"q"}, 10, at(time.Second))))
		require.Empty(t, h.lease([]string{"q"}, 10, at(time.Second)))
		h.finish(a2.ID, spool.StateDead, at(2*time.Second))
		require.Equal(t, []string{a3.ID}, ids(h.lease([]string{"q"}, 10, at(2*time.Second))))
	})

	t.Run("OrderingKeyBeatsPriority", func(t *testing.T) {
		h := begin(t, newStore)
		low := job("q", orderingKey("k"))
		high := job("q", orderingKey("k"), priority(9))
		h.insert(low, high)
		require.Equal(t, []string{low.ID}, ids(h.lease([]string{"q"}, 10, t0)),
			"a later job of the key waits whatever its priority")
	})

	t.Run("OrderingKeyRetryHoldsItsPlace", func(t *testing.T) {
		h := begin(t, newStore)
		a1, a2 := job("q", orderingKey("k")), job("q", orderingKey("k"))
		h.insert(a1, a2)
		require.Equal(t, []string{a1.ID}, ids(h.lease([]string{"q"}, 10, t0)))
		h.retryLater(a1.ID, at(time.Minute))
		require.Empty(t, h.lease([]string{"q"}, 10, at(time.Second)), "a scheduled retry holds the key")

		_, err := h.s.PromoteDue(h.ctx, at(time.Minute), 10)
		require.NoError(t, err)
		got := h.lease([]string{"q"}, 10, at(time.Minute))
		require.Equal(t, []string{a1.ID}, ids(got), "the retry runs before the key's next job")
		require.Equal(t, 2, got[0].Attempt)
		h.finish(a1.ID, spool.StateSucceeded, at(time.Minute))
		require.Equal(t, []string{a2.ID}, ids(h.lease([]string{"q"}, 10, at(time.Minute))))
	})

	t.Run("OrderingKeyCancelledHeadLetsGo", func(t *testing.T) {
		h := begin(t, newStore)
		a1, a2 := job("q", orderingKey("k"), scheduled(at(time.Hour))), job("q", orderingKey("k"))
		h.insert(a1, a2)
		require.Empty(t, h.lease([]string{"q"}, 10, t0), "a delayed head holds its key")
		h.finish(a1.ID, spool.StateCancelled, t0)
		require.Equal(t, []string{a2.ID}, ids(h.lease([]string{"q"}, 10, t0)))
	})

	t.Run("OrderingKeyPerQueue", func(t *testing.T) {
		h := begin(t, newStore)
		x, y := job("q1", orderingKey("k")), job("q2", orderingKey("k"))
		h.insert(x, y)
		require.Equal(t, []string{x.ID, y.ID}, ids(h.lease([]string{"q1", "q2"}, 10, t0)))
	})

	t.Run("OrderingKeyManyConcurrentLeasers", func(t *testing.T) {
		h := begin(t, newStore)
		const keys, perKey = 5, 6
		var in []*store.Record
		for i := range keys * perKey {
			in = append(in, job("q", orderingKey(string(rune('a'+i%keys)))))
		}
		h.insert(in...)
		order := make(map[string]int, len(in))
		for i, r := range in {
			order[r.ID] = i
		}
		// Rounds of concurrent leases: each round may take at most one
		// job per key, the key's oldest; then everything taken finishes.
		for round := range perKey {
			var (
				mu  sync.Mutex
				got []*store.Record
				wg  sync.WaitGroup
			)
			for range 8 {
				wg.Go(func() {
					r, err := h.s.Lease(h.ctx, store.LeaseParams{Queues: []string{"q"}, Max: 2, Worker: "w", Now: t0,
						ExpiresAt: at(time.Minute), NewToken: newToken})
					if err == nil {
						mu.Lock()
						got = append(got, r...)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			require.Len(t, got, keys, "round %d", round)
			seen := map[string]bool{}
			for _, r := range got {
				require.False(t, seen[r.OrderingKey], "two jobs of key %s at once", r.OrderingKey)
				seen[r.OrderingKey] = true
				require.Equal(t, round, order[r.ID]/keys, "job %d leased in round %d", order[r.ID], round)
				h.finish(r.ID, spool.StateSucceeded, t0)
			}
		}
	})

	t.Run("ConcurrencyLimit", func(t *testing.T) {
		h := begin(t, newStore)
		var in []*store.Record
		for range 10 {
			in = append(in, job("q"))
		}
		h.insert(in...)
		lim := map[string]store.QueueLimits{"q": {MaxActive: 3}}
		var (
			mu  sync.Mutex
			got []*store.Record
			wg  sync.WaitGroup
		)
		for range 8 {
			wg.Go(func() {
				for range 3 {
					r, err := h.s.Lease(h.ctx, store.LeaseParams{Queues: []string{"q"}, Max: 2, Worker: "w", Now: t0,
						ExpiresAt: at(time.Minute), NewToken: newToken, Limits: lim})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got = append(got, r...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Len(t, got, 3, "never more than 3 active")
		require.EqualValues(t, 3, h.counts("q")[spool.StateActive])

		h.finish(got[0].ID, spool.StateSucceeded, t0)
		r, _ := h.leaseLimited([]string{"q"}, 10, t0, lim)
		require.Len(t, r, 1, "a finished job frees one place")
		r, _ = h.leaseLimited([]string{"q"}, 10, t0, map[string]store.QueueLimits{"q": {MaxActive: 5}})
		require.Len(t, r, 2, "a raised cap applies at once")
	})

	t.Run("RateLimitTokenBucket", func(t *testing.T) {
		h := begin(t, newStore)
		var in []*store.Record
		for range 20 {
			in = append(in, job("q"))
		}
		h.insert(in...)
		lim := map[string]store.QueueLimits{"q": {Rate: 2, Burst: 3}}

		got, next := h.leaseLimited([]string{"q"}, 10, t0, lim)
		require.Len(t, got, 3, "a new bucket is full: burst")
		require.Equal(t, at(500*time.Millisecond), next, "next token after 1/rate")
		got, next = h.leaseLimited([]string{"q"}, 10, at(400*time.Millisecond), lim)
		require.Empty(t, got)
		require.Equal(t, at(500*time.Millisecond), next)
		got, _ = h.leaseLimited([]string{"q"}, 10, at(500*time.Millisecond), lim)
		require.Len(t, got, 1)
		got, _ = h.leaseLimited([]string{"q"}, 10, at(100*time.Millisecond), lim)
		require.Empty(t, got, "a clock gone backwards refills nothing")
		got, next = h.leaseLimited([]string{"q"}, 10, at(time.Hour), lim)
		require.Len(t, got, 3, "refill stops at burst")
		require.False(t, next.IsZero())
		got, next = h.leaseLimited([]string{"q"}, 1, at(2*time.Hour), lim)
		require.Len(t, got, 1)
		require.True(t, next.IsZero(), "tokens left: not throttled")
		got, _ = h.leaseLimited([]string{"q"}, 10, at(2*time.Hour), map[string]store.QueueLimits{"q": {Rate: 2, Burst: 3, MaxActive: 9}})
		require.Len(t, got, 1, "concurrency and rate together: the tighter wins (8 active, cap 9)")
	})

	t.Run("LimitedAndUnlimitedQueues", func(t *testing.T) {
		h := begin(t, newStore)
		var in []*store.Record
		for range 5 {
			in = append(in, job("lim"), job("free"))
		}
		h.insert(in...)
		got, _ := h.leaseLimited([]string{"lim", "free"}, 6, t0, map[string]store.QueueLimits{"lim": {MaxActive: 2}})
		require.Len(t, got, 6)
		n := map[string]int{}
		for _, r := range got {
			n[r.Queue]++
		}
		require.Equal(t, map[string]int{"lim": 2, "free": 4}, n, "the limited queue gives its share, the next fills the rest")
	})
}

// testReopenOrdering checks that ordering keys hold across a restart.
func testReopenOrdering(t *testing.T, open OpenStore) {
	dir := t.TempDir()
	h := &h{t: t, s: open(t, dir), ctx: t.Context()}
	a1, a2, a3 := job("q", orderingKey("k")), job("q", orderingKey("k")), job("q", orderingKey("k"))
	h.insert(a1, a2, a3)
	require.Equal(t, []string{a1.ID}, ids(h.lease([]string{"q"}, 10, t0)))
	require.NoError(t, h.s.Close())
	h.s = open(t, dir)
	require.Empty(t, h.lease([]string{"q"}, 10, t0), "the active head still holds its key")
	h.finish(a1.ID, spool.StateSucceeded, t0)
	require.Equal(t, []string{a2.ID}, ids(h.lease([]string{"q"}, 10, t0)))
	require.NoError(t, h.s.Close())
	h.s = open(t, dir)
	h.finish(a2.ID, spool.StateSucceeded, t0)
	require.Equal(t, []string{a3.ID}, ids(h.lease([]string{"q"}, 10, t0)))
	require.NoError(t, h.s.Close())
}
