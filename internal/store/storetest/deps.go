package storetest

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func waitingOn(parents ...string) func(r *store.Record) {
	return func(r *store.Record) {
		r.State, r.ReadyAt, r.DependsOn = spool.StateWaiting, nil, parents
	}
}

func sortedIDs(recs []*store.Record) []string {
	out := ids(recs)
	slices.Sort(out)
	return out
}

func testDependencies(t *testing.T, newStore NewStore) {
	t.Run("LookupLeavesOutUnknownIDs", func(t *testing.T) {
		h := begin(t, newStore)
		a, b := job("q"), job("q2", payload(`{"big":true}`))
		h.insert(a, b)
		got, err := h.s.Lookup(h.ctx, []string{a.ID, newID(), b.ID})
		require.NoError(t, err)
		require.Equal(t, sortedIDs([]*store.Record{a, b}), sortedIDs(got))
		for _, r := range got {
			require.Nil(t, r.Payload, "Lookup returns no payload")
			require.NotZero(t, r.Rev)
		}
		got, err = h.s.Lookup(h.ctx, nil)
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("WaitingChildrenFollowsTheState", func(t *testing.T) {
		h := begin(t, newStore)
		p1, p2 := job("q"), job("q")
		c1 := job("q", waitingOn(p1.ID))
		c2 := job("other", waitingOn(p1.ID, p2.ID))
		c3 := job("q", waitingOn(p2.ID))
		h.insert(p1, p2, c1, c2, c3)

		got, err := h.s.WaitingChildren(h.ctx, []string{p1.ID}, "", 100)
		require.NoError(t, err)
		require.Equal(t, sortedIDs([]*store.Record{c1, c2}), sortedIDs(got))
		for _, r := range got {
			require.Equal(t, spool.StateWaiting, r.State)
			require.Nil(t, r.Payload)
		}

		got, err = h.s.WaitingChildren(h.ctx, []string{p1.ID, p2.ID}, "", 100)
		require.NoError(t, err)
		require.Equal(t, sortedIDs([]*store.Record{c1, c2, c3}), sortedIDs(got), "each child once")

		all := sortedIDs([]*store.Record{c1, c2, c3})
		got, err = h.s.WaitingChildren(h.ctx, []string{p1.ID, p2.ID}, "", 2)
		require.NoError(t, err)
		require.Equal(t, all[:2], ids(got), "a page in id order")
		got, err = h.s.WaitingChildren(h.ctx, []string{p1.ID, p2.ID}, all[1], 2)
		require.NoError(t, err)
		require.Equal(t, all[2:], ids(got), "the next page")

		// A child that leaves waiting is no longer found; one that comes
		// back is found again.
		r := h.get(c2.ID)
		r.State, r.ReadyAt = spool.StateReady, ptr(at(0))
		h.update(r)
		got, err = h.s.WaitingChildren(h.ctx, []string{p1.ID}, "", 100)
		require.NoError(t, err)
		require.Equal(t, []string{c1.ID}, ids(got))
		h.finish(c1.ID, spool.StateCancelled, at(1))
		got, err = h.s.WaitingChildren(h.ctx, []string{p1.ID}, "", 100)
		require.NoError(t, err)
		require.Empty(t, got)

		_, err = h.s.WaitingChildren(h.ctx, []string{p1.ID}, "", 0)
		require.ErrorIs(t, err, spool.ErrInvalid)
	})

	t.Run("WaitingJobsAreNotLeasedButCount", func(t *testing.T) {
		h := begin(t, newStore)
		p := job("q")
		c := job("q", waitingOn(p.ID))
		h.insert(p, c)
		got := h.lease([]string{"q"}, 10, at(0))
		require.Equal(t, []string{p.ID}, ids(got))
		require.Equal(t, int64(1), h.counts("q")[spool.StateWaiting])
		_, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("q")}, MaxDepth: map[string]int64{"q": 2}})
		var qf *spool.QueueFullError
		require.ErrorAs(t, err, &qf, "a waiting job counts toward max_depth")
	})
}
