package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func testMaintenance(t *testing.T, newStore NewStore) {
	testPromoteDue(t, newStore)
	testExpiredLeases(t, newStore)
	testPurge(t, newStore)
}

func testPromoteDue(t *testing.T, newStore NewStore) {
	t.Run("PromoteDue", func(t *testing.T) {
		h := begin(t, newStore)
		s1, s2, s3 := job("a", scheduled(at(time.Minute))), job("a", scheduled(at(2*time.Minute))), job("a", scheduled(at(3*time.Minute)))
		other := job("b", scheduled(at(time.Minute)))
		ready := job("c")
		h.insert(s1, s2, s3, other, ready)
		before := map[string]*store.Record{}
		for _, r := range []*store.Record{s1, s2, s3, other, ready} {
			before[r.ID] = h.get(r.ID)
		}

		qs, err := h.s.PromoteDue(h.ctx, at(30*time.Second), 10)
		require.NoError(t, err)
		require.Empty(t, qs, "nothing is due yet")

		now := at(2 * time.Minute)
		qs, err = h.s.PromoteDue(h.ctx, now, 10)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"a", "b"}, qs)
		for _, r := range []*store.Record{s1, s2, other} {
			g := h.get(r.ID)
			require.Equal(t, spool.StateReady, g.State, "run_at <= now is due")
			requireTime(t, now, g.ReadyAt)
			require.NotEqual(t, before[r.ID].Rev, g.Rev)
			requireJSON(t, before[r.ID].Payload, g.Payload)
		}
		require.Equal(t, spool.StateScheduled, h.get(s3.ID).State)
		require.Equal(t, before[ready.ID].Rev, h.get(ready.ID).Rev, "a ready job is not touched")
		require.Equal(t, []string{s1.ID, s2.ID}, ids(h.lease([]string{"a"}, 10, now)))

		qs, err = h.s.PromoteDue(h.ctx, now, 10)
		require.NoError(t, err)
		require.Empty(t, qs, "promoted jobs are not promoted again")
	})

	t.Run("PromoteDueLimit", func(t *testing.T) {
		h := begin(t, newStore)
		for i := range 5 {
			h.insert(job("a", scheduled(at(time.Duration(i)*time.Second))))
		}
		for _, wantReady := range []int64{2, 4, 5, 5} {
			_, err := h.s.PromoteDue(h.ctx, at(time.Hour), 2)
			require.NoError(t, err)
			require.Equal(t, wantReady, h.counts("a")[spool.StateReady])
		}
	})

	t.Run("PromoteDueLeavesOtherStates", func(t *testing.T) {
		h := begin(t, newStore)
		w := job("a", state(spool.StateWaiting), func(r *store.Record) { r.RunAt = at(-time.Hour) })
		h.insert(w, job("a", func(r *store.Record) { r.RunAt = at(-time.Hour) }))
		qs, err := h.s.PromoteDue(h.ctx, at(time.Hour), 10)
		require.NoError(t, err)
		require.Empty(t, qs)
		require.Equal(t, spool.StateWaiting, h.get(w.ID).State)
	})
}

func testExpiredLeases(t *testing.T, newStore NewStore) {
	t.Run("ExpiredLeases", func(t *testing.T) {
		h := begin(t, newStore)
		a, b, c := job("q"), job("q"), job("q2")
		h.insert(a, b, c)
		leaseAt := func(queue string, exp time.Duration) *store.Record {
			t.Helper()
			recs, err := h.s.Lease(h.ctx, store.LeaseParams{
				Queues: []string{queue}, Max: 1, Worker: "w", Now: t0, ExpiresAt: at(exp), NewToken: newToken,
			})
			require.NoError(t, err)
			require.Len(t, recs, 1)
			return recs[0]
		}
		la := leaseAt("q", 10*time.Second)
		lb := leaseAt("q", 5*time.Second)
		lc := leaseAt("q2", 30*time.Second)

		exp, err := h.s.ExpiredLeases(h.ctx, at(4*time.Second), 10)
		require.NoError(t, err)
		require.Empty(t, exp)

		exp, err = h.s.ExpiredLeases(h.ctx, at(10*time.Second), 10)
		require.NoError(t, err)
		require.Equal(t, []string{lb.ID, la.ID}, ids(exp), "oldest expiry first; expiry == now is expired")
		require.Equal(t, lb.Token, exp[0].Token)
		require.Equal(t, la.Token, exp[1].Token)
		require.Equal(t, lb.Rev, exp[0].Rev)
		require.Equal(t, spool.StateActive, exp[0].State)

		exp, err = h.s.ExpiredLeases(h.ctx, at(time.Hour), 1)
		require.NoError(t, err)
		require.Equal(t, []string{lb.ID}, ids(exp), "limit")

		exp, err = h.s.ExpiredLeases(h.ctx, at(time.Hour), 10)
		require.NoError(t, err)
		require.Equal(t, []string{lb.ID, la.ID, lc.ID}, ids(exp), "every queue, read-only")

		// An extended lease moves back; a finished job drops out.
		la.LeaseExpiresAt = ptr(at(time.Minute))
		h.update(la)
		h.finish(lb.ID, spool.StateSucceeded, at(time.Second))
		exp, err = h.s.ExpiredLeases(h.ctx, at(40*time.Second), 10)
		require.NoError(t, err)
		require.Equal(t, []string{lc.ID}, ids(exp))
	})
}

func testPurge(t *testing.T, newStore NewStore) {
	t.Run("Purge", func(t *testing.T) {
		h := begin(t, newStore)
		ok, dead, cancelled, boundary := job("q"), job("q"), job("q"), job("q")
		ready, active, sched := job("q"), job("q"), job("q", scheduled(at(time.Hour)))
		otherQ := job("other")
		h.insert(ok, dead, cancelled, boundary, otherQ)
		h.finish(ok.ID, spool.StateSucceeded, at(time.Minute))
		h.finish(dead.ID, spool.StateDead, at(2*time.Minute))
		h.finish(cancelled.ID, spool.StateCancelled, at(5*time.Minute))
		h.finish(boundary.ID, spool.StateSucceeded, at(3*time.Minute))
		h.finish(otherQ.ID, spool.StateSucceeded, at(time.Minute))
		h.insert(active)
		h.lease([]string{"q"}, 1, t0)
		h.insert(ready, sched)

		n, err := h.s.Purge(h.ctx, "q", at(3*time.Minute), 100)
		require.NoError(t, err)
		require.Equal(t, 2, n, "finished strictly before the cutoff")
		h.requireGone(ok.ID)
		h.requireGone(dead.ID)
		for _, r := range []*store.Record{cancelled, boundary, ready, active, sched, otherQ} {
			h.get(r.ID)
		}
		require.Equal(t, want(spool.StateReady, 1, spool.StateActive, 1, spool.StateScheduled, 1,
			spool.StateSucceeded, 1, spool.StateCancelled, 1), h.counts("q"))

		n, err = h.s.Purge(h.ctx, "q", at(3*time.Minute), 100)
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("PurgeLimitOldestFirst", func(t *testing.T) {
		h := begin(t, newStore)
		var recs []*store.Record
		for i := range 5 {
			r := job("q")
			h.insert(r)
			h.finish(r.ID, spool.StateSucceeded, at(time.Duration(5-i)*time.Minute))
			recs = append(recs, r)
		}
		n, err := h.s.Purge(h.ctx, "q", at(time.Hour), 2)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		h.requireGone(recs[4].ID)
		h.requireGone(recs[3].ID)
		h.get(recs[2].ID)
		n, err = h.s.Purge(h.ctx, "q", at(time.Hour), 10)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.Equal(t, want(), h.counts("q"))
		_, err = h.s.Queue(h.ctx, "q")
		require.NoError(t, err, "a queue outlives its jobs")
	})

	t.Run("PurgeFreesIdempotencyKey", func(t *testing.T) {
		h := begin(t, newStore)
		a := job("q", key("k"))
		h.insert(a)
		h.finish(a.ID, spool.StateSucceeded, at(time.Second))
		n, err := h.s.Purge(h.ctx, "q", at(time.Hour), 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		b := job("q", key("k"))
		res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{b}})
		require.NoError(t, err)
		require.False(t, res[0].Existing, "the purged job's key is free again")
		require.Equal(t, b.ID, res[0].Record.ID)
		h.get(b.ID)
	})

	t.Run("PurgeUnknownQueue", func(t *testing.T) {
		h := begin(t, newStore)
		n, err := h.s.Purge(h.ctx, "nope", at(time.Hour), 10)
		require.NoError(t, err)
		require.Zero(t, n)
	})
}
