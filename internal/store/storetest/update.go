package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func testUpdate(t *testing.T, newStore NewStore) {
	t.Run("CompareAndSet", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q")
		h.insert(in)
		r := h.get(in.ID)
		stale := r.Clone()
		r.Tags = []string{"first"}
		first := h.update(r)[0]
		require.NotEqual(t, r.Rev, first.Rev)
		require.Equal(t, []string{"first"}, first.Tags)

		stale.Tags = []string{"stale"}
		recs, errs, err := h.s.Update(h.ctx, []store.Change{{Record: stale}})
		require.NoError(t, err)
		require.ErrorIs(t, errs[0], spool.ErrConflict)
		require.Nil(t, recs[0])
		g := h.get(in.ID)
		require.Equal(t, []string{"first"}, g.Tags, "a conflict changes nothing")
		require.Equal(t, first.Rev, g.Rev)
	})

	t.Run("UnknownID", func(t *testing.T) {
		h := begin(t, newStore)
		unknown := job("q")
		recs, errs, err := h.s.Update(h.ctx, []store.Change{{Record: unknown}})
		require.NoError(t, err)
		require.Len(t, errs, 1)
		require.ErrorIs(t, errs[0], spool.ErrNotFound)
		require.Nil(t, recs[0])
		h.requireGone(unknown.ID)
	})

	t.Run("EachChangeOnItsOwn", func(t *testing.T) {
		h := begin(t, newStore)
		a, b, d := job("q"), job("q"), job("q")
		h.insert(a, b, d)
		ra, rb, rd := h.get(a.ID), h.get(b.ID), h.get(d.ID)
		rb.Rev += 1000
		ra.Priority, rb.Priority, rd.Priority = 1, 2, 4
		unknown := job("q", priority(3))
		recs, errs, err := h.s.Update(h.ctx, []store.Change{{Record: ra}, {Record: rb}, {Record: unknown}, {Record: rd}})
		require.NoError(t, err)
		require.Len(t, recs, 4)
		require.Len(t, errs, 4)
		require.NoError(t, errs[0])
		require.ErrorIs(t, errs[1], spool.ErrConflict)
		require.ErrorIs(t, errs[2], spool.ErrNotFound)
		require.NoError(t, errs[3])
		require.NotNil(t, recs[0])
		require.Nil(t, recs[1])
		require.Nil(t, recs[2])
		require.NotNil(t, recs[3])
		require.Equal(t, 1, h.get(a.ID).Priority)
		require.Equal(t, 0, h.get(b.ID).Priority)
		require.Equal(t, 4, h.get(d.ID).Priority)
		h.requireGone(unknown.ID)
	})

	t.Run("SameJobTwiceInOneCall", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q")
		h.insert(in)
		r1, r2 := h.get(in.ID), h.get(in.ID)
		r1.Priority, r2.Priority = 1, 2
		_, errs, err := h.s.Update(h.ctx, []store.Change{{Record: r1}, {Record: r2}})
		require.NoError(t, err)
		require.NoError(t, errs[0])
		require.ErrorIs(t, errs[1], spool.ErrConflict, "changes apply in order: the second saw an old revision")
		require.Equal(t, 1, h.get(in.ID).Priority)
	})

	t.Run("TerminalAndBackInOneCall", func(t *testing.T) {
		// The second change reads what the first one wrote, though the
		// call is one write: a finished job and its idempotency key are
		// seen by the changes and follow-up jobs after it.
		h := begin(t, newStore)
		in := job("q", key("k"))
		other := job("q")
		h.insert(in, other)
		dead := h.get(in.ID)
		dead.State, dead.FinishedAt = spool.StateDead, ptr(at(time.Second))
		back := dead.Clone()
		back.Rev++
		back.State, back.FinishedAt, back.ReadyAt = spool.StateReady, nil, ptr(at(2*time.Second))
		again := back.Clone()
		again.Rev++
		again.State, again.FinishedAt, again.ReadyAt = spool.StateSucceeded, ptr(at(3*time.Second)), nil
		sameKey := job("q", key("k"))
		done := h.get(other.ID)
		done.State, done.FinishedAt = spool.StateCancelled, ptr(at(time.Second))
		recs, errs, err := h.s.Update(h.ctx, []store.Change{
			{Record: dead}, {Record: back}, {Record: done, Then: []*store.Record{sameKey}}, {Record: again},
		})
		require.NoError(t, err)
		for i := range errs {
			require.NoError(t, errs[i], "change %d", i)
		}
		require.Equal(t, dead.Rev+3, recs[3].Rev)
		h.requireGone(sameKey.ID)
		g := h.get(in.ID)
		require.Equal(t, spool.StateSucceeded, g.State)
		require.Equal(t, want(spool.StateSucceeded, 1, spool.StateCancelled, 1), h.counts("q"))
		require.Equal(t, []string{in.ID}, h.listAll("q", spool.StateSucceeded))
		require.Empty(t, h.listAll("q", spool.StateDead))
		require.Empty(t, h.listAll("q", spool.StateReady))
		res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("q", key("k"))}})
		require.NoError(t, err)
		require.True(t, res[0].Existing)
		require.Equal(t, in.ID, res[0].Record.ID)
	})

	t.Run("ReturnsStoredRecord", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q")
		h.insert(in)
		r := h.get(in.ID)
		r.Errors = []spool.AttemptError{{Attempt: 1, Error: "boom", At: at(time.Second)}}
		r.Progress = &spool.Progress{Percent: 50, Message: "half", UpdatedAt: at(time.Second)}
		r.CancelRequested = true
		r.Result = json.RawMessage(`{"ok":1}`)
		out := h.update(r)[0]
		g := h.get(in.ID)
		requireSameJob(t, g, out)
		require.Equal(t, g.Rev, out.Rev)
		requireSameJob(t, r, g)
	})

	t.Run("ActiveBackToReadyIsLeasedAgain", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("q"))
		l := h.lease([]string{"q"}, 1, t0)[0]
		l.State, l.Token, l.LeaseExpiresAt, l.ReadyAt = spool.StateReady, "", nil, ptr(at(time.Second))
		h.update(l)
		again := h.lease([]string{"q"}, 1, at(2*time.Second))
		require.Len(t, again, 1)
		require.Equal(t, l.ID, again[0].ID)
		require.Equal(t, 2, again[0].Attempt)
		require.NotEqual(t, l.Token, again[0].Token)
	})

	t.Run("ToScheduledWaitsForPromote", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("q"))
		l := h.lease([]string{"q"}, 1, t0)[0]
		l.State, l.Token, l.LeaseExpiresAt, l.RunAt = spool.StateScheduled, "", nil, at(time.Minute)
		h.update(l)
		require.Empty(t, h.lease([]string{"q"}, 1, at(2*time.Minute)))
		qs, err := h.s.PromoteDue(h.ctx, at(2*time.Minute), 10)
		require.NoError(t, err)
		require.Equal(t, []string{"q"}, qs)
		got := h.lease([]string{"q"}, 1, at(2*time.Minute))
		require.Equal(t, []string{l.ID}, ids(got))
	})

	t.Run("ToTerminalLeavesDepthAndLease", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("q"), job("q"))
		l := h.lease([]string{"q"}, 1, t0)[0]
		l.State, l.FinishedAt = spool.StateSucceeded, ptr(at(time.Second))
		h.update(l)
		require.Equal(t, want(spool.StateReady, 1, spool.StateSucceeded, 1), h.counts("q"))
		exp, err := h.s.ExpiredLeases(h.ctx, at(time.Hour), 10)
		require.NoError(t, err)
		require.Empty(t, exp, "a finished job holds no lease, whatever its lease_expires_at says")
		_, err = h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("q")}, MaxDepth: map[string]int64{"q": 2}})
		require.NoError(t, err)
	})

	t.Run("ResultWrittenWhenSetKeptOtherwise", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q")
		h.insert(in)
		r := h.get(in.ID)
		require.Empty(t, r.Result)
		r.Result = json.RawMessage(`{"rows":10}`)
		h.update(r)
		r = h.get(in.ID)
		require.JSONEq(t, `{"rows":10}`, string(r.Result))
		r.Result = nil
		r.Priority = 9
		h.update(r)
		r = h.get(in.ID)
		require.JSONEq(t, `{"rows":10}`, string(r.Result), "a nil result keeps the stored one")
		require.Equal(t, 9, r.Priority)
		r.Result = json.RawMessage(`{"rows":11}`)
		h.update(r)
		require.JSONEq(t, `{"rows":11}`, string(h.get(in.ID).Result))
	})

	t.Run("NoBodies", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q", payload(`{"p":1}`))
		h.insert(in)
		r := h.get(in.ID)
		r.Result = json.RawMessage(`{"r":1}`)
		r.Priority = 7
		recs, errs, err := h.s.Update(h.ctx, []store.Change{{Record: r, NoBodies: true}})
		require.NoError(t, err)
		require.NoError(t, errs[0])
		require.Nil(t, recs[0].Payload, "no payload in the answer")
		require.Nil(t, recs[0].Result, "no result in the answer")
		require.Equal(t, 7, recs[0].Priority)
		require.Equal(t, r.Rev+1, recs[0].Rev)
		g := h.get(in.ID)
		requireJSON(t, json.RawMessage(`{"p":1}`), g.Payload)
		requireJSON(t, json.RawMessage(`{"r":1}`), g.Result)

		// Next to a change that wants its bodies, in one call.
		other := job("q", payload(`{"p":2}`))
		h.insert(other)
		g, o := h.get(in.ID), h.get(other.ID)
		g.Priority, o.Priority = 8, 9
		recs, errs, err = h.s.Update(h.ctx, []store.Change{{Record: g, NoBodies: true}, {Record: o}})
		require.NoError(t, err)
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		require.Nil(t, recs[0].Payload)
		require.Nil(t, recs[0].Result)
		requireJSON(t, json.RawMessage(`{"p":2}`), recs[1].Payload)
	})

	t.Run("PayloadNeverRewritten", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q", payload(`{"original":true}`))
		h.insert(in)
		r := h.get(in.ID)
		r.Payload = json.RawMessage(`{"original":false}`)
		h.update(r)
		r = h.get(in.ID)
		require.JSONEq(t, `{"original":true}`, string(r.Payload))
		r.Payload = nil
		h.update(r)
		require.JSONEq(t, `{"original":true}`, string(h.get(in.ID).Payload))
	})

	t.Run("RevChangesOnEveryWrite", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q")
		revs := map[uint64]string{h.insert(in)[0].Rev: "insert"}
		note := func(rev uint64, what string) {
			t.Helper()
			prev, dup := revs[rev]
			require.False(t, dup, "%s reused revision %d of %s", what, rev, prev)
			revs[rev] = what
			require.Equal(t, rev, h.get(in.ID).Rev)
		}
		l := h.lease([]string{"q"}, 1, t0)[0]
		note(l.Rev, "lease")
		l.State, l.Token = spool.StateScheduled, ""
		l.RunAt = at(time.Second)
		note(h.update(l)[0].Rev, "update")
		_, err := h.s.PromoteDue(h.ctx, at(time.Second), 10)
		require.NoError(t, err)
		note(h.get(in.ID).Rev, "promote")
		r := h.get(in.ID)
		note(h.update(r)[0].Rev, "unchanged update")
	})
}

func testUpdateThen(t *testing.T, newStore NewStore) {
	t.Run("StoredWithTheChangeOnly", func(t *testing.T) {
		h := begin(t, newStore)
		a, b := job("q"), job("q")
		h.insert(a, b)
		ra, rb := h.get(a.ID), h.get(b.ID)
		rb.Rev += 1000 // this change conflicts
		ra.State, ra.FinishedAt, ra.ReadyAt = spool.StateSucceeded, ptr(at(time.Second)), nil
		rb.State, rb.FinishedAt, rb.ReadyAt = spool.StateSucceeded, ptr(at(time.Second)), nil
		da := job("_hooks", key("a@1"), payload(`{"job":"a"}`))
		db := job("_hooks", key("b@1"), payload(`{"job":"b"}`))
		_, errs, err := h.s.Update(h.ctx, []store.Change{{Record: ra, Then: []*store.Record{da}}, {Record: rb, Then: []*store.Record{db}}})
		require.NoError(t, err)
		require.NoError(t, errs[0])
		require.ErrorIs(t, errs[1], spool.ErrConflict)
		got := h.get(da.ID)
		require.Equal(t, spool.StateReady, got.State)
		requireJSON(t, json.RawMessage(`{"job":"a"}`), got.Payload)
		h.requireGone(db.ID)
		require.Equal(t, int64(1), h.counts("_hooks")[spool.StateReady])
		leased := h.lease([]string{"_hooks"}, 10, at(2*time.Second))
		require.Equal(t, []string{da.ID}, ids(leased), "a follow-up job is leased like any other")
	})

	t.Run("TakenKeyIsSkipped", func(t *testing.T) {
		h := begin(t, newStore)
		a := job("q")
		earlier := job("_hooks", key("a@1"))
		h.insert(a, earlier)
		ra := h.get(a.ID)
		ra.State, ra.FinishedAt, ra.ReadyAt = spool.StateDead, ptr(at(time.Second)), nil
		repeat := job("_hooks", key("a@1"))
		_, errs, err := h.s.Update(h.ctx, []store.Change{{Record: ra, Then: []*store.Record{repeat}}})
		require.NoError(t, err)
		require.NoError(t, errs[0])
		require.Equal(t, spool.StateDead, h.get(a.ID).State, "the change is written")
		h.requireGone(repeat.ID)
		require.Equal(t, int64(1), h.counts("_hooks")[spool.StateReady])
	})
}
