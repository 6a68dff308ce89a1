package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// OpenStore opens the store kept in dir, creating it if dir is empty.
type OpenStore = func(t *testing.T, dir string) store.Store

// RunReopen checks that everything a store holds survives Close and a new
// open on the same directory: jobs in every state with their payloads,
// results, tokens and revisions, and every index rebuilt from them (leasing
// order, depth, idempotency keys, queue configs, expiries, purge order).
func RunReopen(t *testing.T, open OpenStore) {
	t.Run("Everything", func(t *testing.T) {
		t.Parallel()
		testReopenEverything(t, open)
	})
	t.Run("OrderingKeys", func(t *testing.T) {
		t.Parallel()
		testReopenOrdering(t, open)
	})
	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := open(t, dir)
		require.NoError(t, s.Close())
		s = open(t, dir)
		qs, err := s.Queues(t.Context())
		require.NoError(t, err)
		require.Empty(t, qs)
		require.NoError(t, s.Close())
	})
	t.Run("Schedules", func(t *testing.T) { testSchedulesReopen(t, open) })
	t.Run("ManyBatches", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		h := &h{t: t, s: open(t, dir), ctx: t.Context()}
		var want []string
		for range 20 {
			batch := make([]*store.Record, 50)
			for i := range batch {
				batch[i] = job("q")
				want = append(want, batch[i].ID)
			}
			h.insert(batch...)
		}
		require.NoError(t, h.s.Close())
		h.s = open(t, dir)
		got := h.lease([]string{"q"}, len(want)+1, t0)
		require.Equal(t, want, ids(got), "insert order across batches survives")
		require.NoError(t, h.s.Close())
	})
}

// reopenState is everything the scenario checks, read from one store.
type reopenState struct {
	jobs   map[string]*store.Record
	queues []*store.QueueRecord
	lists  map[string][]string
}

func snapshotState(h *h, jobIDs []string) reopenState {
	h.t.Helper()
	st := reopenState{jobs: map[string]*store.Record{}, lists: map[string][]string{}}
	for _, id := range jobIDs {
		st.jobs[id] = h.get(id)
	}
	qs, err := h.s.Queues(h.ctx)
	require.NoError(h.t, err)
	st.queues = qs
	for _, q := range qs {
		st.lists[q.Name] = h.listAll(q.Name, "")
	}
	return st
}

func requireSameState(t *testing.T, want, got reopenState) {
	t.Helper()
	for id, w := range want.jobs {
		g := got.jobs[id]
		requireSameJob(t, w, g, "job %s", id)
		require.Equal(t, w.Token, g.Token, "token of %s", id)
		require.Equal(t, w.Rev, g.Rev, "rev of %s", id)
	}
	require.Equal(t, queueNames(want.queues), queueNames(got.queues))
	for i, w := range want.queues {
		g := got.queues[i]
		require.Equal(t, w.Config, g.Config, "config of %s", w.Name)
		require.Equal(t, fullCounts(w.Counts), fullCounts(g.Counts), "counts of %s", w.Name)
		require.True(t, w.OldestReady.Equal(g.OldestReady), "oldest ready of %s: %v, then %v", w.Name, w.OldestReady, g.OldestReady)
	}
	require.Equal(t, want.lists, got.lists)
}

func testReopenEverything(t *testing.T, open OpenStore) {
	dir := t.TempDir()
	h := &h{t: t, s: open(t, dir), ctx: t.Context()}

	// A configured queue without jobs.
	require.NoError(t, h.s.SetQueueConfig(h.ctx, "configured", fullConfig()))

	// "work": ready jobs of two priorities whose ids run against insert
	// order, a scheduled and a waiting job, all with idempotency keys.
	idsDesc := []string{newID(), newID(), newID(), newID()}
	slices.Reverse(idsDesc)
	withID := func(id string) func(*store.Record) { return func(r *store.Record) { r.ID = id } }
	a := job("work", withID(idsDesc[0]), priority(0), key("k-a"), readyAt(at(time.Second)))
	b := job("work", withID(idsDesc[1]), priority(5), key("k-b"), readyAt(at(2*time.Second)))
	c := job("work", withID(idsDesc[2]), priority(0), readyAt(at(3*time.Second)))
	d := job("work", withID(idsDesc[3]), priority(5), readyAt(at(4*time.Second)))
	e := job("work", scheduled(at(time.Hour)), key("k-e"))
	w := job("work", state(spool.StateWaiting), func(r *store.Record) { r.DependsOn = []string{a.ID} })
	h.insert(a, b)
	h.insert(c, d, e, w)

	// "busy": two active jobs with different expiries.
	f, g := job("busy"), job("busy")
	h.insert(f, g)
	lease := func(exp time.Duration) *store.Record {
		recs, err := h.s.Lease(h.ctx, store.LeaseParams{
			Queues: []string{"busy"}, Max: 1, Worker: "w9", Now: t0, ExpiresAt: at(exp), NewToken: newToken,
		})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		return recs[0]
	}
	lf, lg := lease(20*time.Second), lease(10*time.Second)

	// "done": one job per terminal state, a result, keys.
	hs, is, js := job("done", key("k-h")), job("done", key("k-i")), job("done")
	h.insert(hs, is, js)
	rh := h.get(hs.ID)
	rh.State, rh.FinishedAt, rh.Result = spool.StateSucceeded, ptr(at(time.Minute)), json.RawMessage(`{"sum":42}`)
	h.update(rh)
	ri := h.get(is.ID)
	ri.State, ri.FinishedAt = spool.StateDead, ptr(at(2*time.Minute))
	ri.Errors = []spool.AttemptError{{Attempt: 1, Error: "no", At: at(2 * time.Minute)}}
	h.update(ri)
	h.finish(js.ID, spool.StateCancelled, at(3*time.Minute))

	all := []string{a.ID, b.ID, c.ID, d.ID, e.ID, w.ID, f.ID, g.ID, hs.ID, is.ID, js.ID}
	before := snapshotState(h, all)
	require.NoError(t, h.s.Close())

	h.s = open(t, dir)
	requireSameState(t, before, snapshotState(h, all))

	// The waiting job is still found by its parent.
	children, err := h.s.WaitingChildren(h.ctx, []string{a.ID}, "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{w.ID}, ids(children))

	// Idempotency keys.
	res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{
		job("work", key("k-a")), job("work", key("k-e")), job("done", key("k-h")),
	}})
	require.NoError(t, err)
	for i, want := range []string{a.ID, e.ID, hs.ID} {
		require.True(t, res[i].Existing, "key %d", i)
		require.Equal(t, want, res[i].Record.ID)
	}
	require.JSONEq(t, `{"sum":42}`, string(res[2].Record.Result))

	// Depth: a, b, c, d, e, w are not terminal.
	_, err = h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("work")}, MaxDepth: map[string]int64{"work": 6}})
	var qf *spool.QueueFullError
	require.True(t, errors.As(err, &qf), "want queue full, got %v", err)
	require.EqualValues(t, 6, qf.Depth)

	// Expired leases, oldest first, with tokens.
	exp, err := h.s.ExpiredLeases(h.ctx, at(time.Minute), 10)
	require.NoError(t, err)
	require.Equal(t, []string{lg.ID, lf.ID}, ids(exp))
	require.Equal(t, []string{lg.Token, lf.Token}, []string{exp[0].Token, exp[1].Token})

	// Revisions: a change based on the record read before the restart.
	back := before.jobs[f.ID].Clone()
	back.State, back.Token, back.LeaseExpiresAt = spool.StateReady, "", nil
	h.update(back)

	// Leasing order: priority, then insert order across the restart.
	n := job("work", priority(5))
	h.insert(n)
	got := h.lease([]string{"work"}, 10, at(time.Minute))
	require.Equal(t, []string{b.ID, d.ID, n.ID, a.ID, c.ID}, ids(got))

	// Promotion and purge.
	qs, err := h.s.PromoteDue(h.ctx, at(2*time.Hour), 10)
	require.NoError(t, err)
	require.Equal(t, []string{"work"}, qs)
	purged, err := h.s.Purge(h.ctx, "done", at(150*time.Second), 10)
	require.NoError(t, err)
	require.Equal(t, 2, purged)
	res, err = h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("done", key("k-h"))}})
	require.NoError(t, err)
	require.False(t, res[0].Existing)

	// What changed after the first reopen survives a second one.
	all = append(all, n.ID, res[0].Record.ID)
	all = slices.DeleteFunc(all, func(id string) bool { return id == hs.ID || id == is.ID })
	before = snapshotState(h, all)
	require.NoError(t, h.s.Close())
	h.s = open(t, dir)
	requireSameState(t, before, snapshotState(h, all))
	h.requireGone(hs.ID)
	h.requireGone(is.ID)
	require.Equal(t, spool.StateReady, h.get(e.ID).State)
	require.Equal(t, []string{e.ID}, ids(h.lease([]string{"work"}, 10, at(2*time.Hour))))
	require.Equal(t, []string{f.ID}, ids(h.lease([]string{"busy"}, 10, at(2*time.Hour))))
	require.NoError(t, h.s.Close())
}
