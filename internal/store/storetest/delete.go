package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func tags(t ...string) func(r *store.Record) { return func(r *store.Record) { r.Tags = t } }

func typ(s string) func(r *store.Record) { return func(r *store.Record) { r.Type = s } }

func jobRev(r *store.Record) store.JobRev { return store.JobRev{ID: r.ID, Rev: r.Rev} }

func testDelete(t *testing.T, newStore NewStore) {
	t.Run("FinishedJobs", func(t *testing.T) {
		h := begin(t, newStore)
		ins := h.insert(job("q", key("k1")), job("q"), job("q"), job("q"))
		done := h.finish(ins[0].ID, spool.StateSucceeded, at(time.Second))
		dead := h.finish(ins[1].ID, spool.StateDead, at(time.Second))
		cancelled := h.finish(ins[2].ID, spool.StateCancelled, at(time.Second))
		ready := h.get(ins[3].ID)

		stale := jobRev(cancelled)
		stale.Rev--
		errs, err := h.s.Delete(h.ctx, store.DeleteParams{Jobs: []store.JobRev{
			jobRev(done), jobRev(dead), stale, jobRev(ready), {ID: newID(), Rev: 1}, jobRev(done),
		}})
		require.NoError(t, err)
		require.Len(t, errs, 6)
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		require.ErrorIs(t, errs[2], spool.ErrConflict, "stale rev")
		require.ErrorIs(t, errs[3], spool.ErrConflict, "a ready job is not deleted")
		require.ErrorIs(t, errs[4], spool.ErrNotFound)
		require.ErrorIs(t, errs[5], spool.ErrNotFound, "named twice: deleted once")

		h.requireGone(done.ID)
		h.requireGone(dead.ID)
		require.Equal(t, spool.StateCancelled, h.get(cancelled.ID).State)
		require.Equal(t, spool.StateReady, h.get(ready.ID).State)
		require.Equal(t, want(spool.StateCancelled, 1, spool.StateReady, 1), h.counts("q"))
		require.ElementsMatch(t, []string{cancelled.ID, ready.ID}, h.listAll("q", ""))
		require.Empty(t, h.listAll("q", spool.StateSucceeded))

		// The deleted job's idempotency key is free again.
		again := h.insert(job("q", key("k1")))
		require.NotEqual(t, done.ID, again[0].ID)

		errs, err = h.s.Delete(h.ctx, store.DeleteParams{Jobs: []store.JobRev{jobRev(cancelled)}})
		require.NoError(t, err)
		require.NoError(t, errs[0])
		h.requireGone(cancelled.ID)
	})

	t.Run("Empty", func(t *testing.T) {
		h := begin(t, newStore)
		errs, err := h.s.Delete(h.ctx, store.DeleteParams{})
		require.NoError(t, err)
		require.Empty(t, errs)
	})

	t.Run("Queue", func(t *testing.T) {
		h := begin(t, newStore)
		require.ErrorIs(t, h.s.DeleteQueue(h.ctx, "nope"), spool.ErrNotFound)

		require.NoError(t, h.s.SetQueueConfig(h.ctx, "q", fullConfig()))
		r := h.insert(job("q"))[0]
		h.insert(job("other"))
		require.ErrorIs(t, h.s.DeleteQueue(h.ctx, "q"), spool.ErrConflict, "a queue with a ready job")
		done := h.finish(r.ID, spool.StateSucceeded, at(time.Second))
		require.ErrorIs(t, h.s.DeleteQueue(h.ctx, "q"), spool.ErrConflict, "a queue with a finished job")
		errs, err := h.s.Delete(h.ctx, store.DeleteParams{Jobs: []store.JobRev{jobRev(done)}})
		require.NoError(t, err)
		require.NoError(t, errs[0])

		require.NoError(t, h.s.DeleteQueue(h.ctx, "q"))
		_, err = h.s.Queue(h.ctx, "q")
		require.ErrorIs(t, err, spool.ErrNotFound)
		qs, err := h.s.Queues(h.ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"other"}, queueNames(qs))
		require.ErrorIs(t, h.s.DeleteQueue(h.ctx, "q"), spool.ErrNotFound)

		// Used again, it comes back with no config and counts from zero.
		h.insert(job("q"))
		q, err := h.s.Queue(h.ctx, "q")
		require.NoError(t, err)
		require.Equal(t, spool.QueueConfig{}, q.Config)
		require.Equal(t, want(spool.StateReady, 1), fullCounts(q.Counts))
	})
}

func testListFiltered(t *testing.T, newStore NewStore) {
	h := begin(t, newStore)
	var ins []*store.Record
	for i := range 30 {
		mods := []func(*store.Record){}
		if i%2 == 0 {
			mods = append(mods, typ("report"))
		}
		if i%3 == 0 {
			mods = append(mods, tags("a", "vip"))
		} else {
			mods = append(mods, tags("a"))
		}
		if i%5 == 0 {
			mods = append(mods, orderingKey("user-1"))
		}
		switch i % 6 {
		case 0:
			mods = append(mods, payload(fmt.Sprintf(`{"customer":42,"n":%d,"who":{"b":[1,"x"],"a":null}}`, i)))
		case 1:
			mods = append(mods, payload(`{"customer":42.0,"customer":"42"}`)) // the last one counts
		case 2:
			mods = append(mods, payload(`[{"customer":42}]`))
		case 3:
			mods = append(mods, payload(`{"customer":4.2e1, "who":{"a":null,"b":[1,"x"]}}`))
		case 4:
			mods = append(mods, func(r *store.Record) { r.Payload = nil })
		case 5:
			// PostgreSQL's jsonb holds no U+0000: a filter must still work.
			mods = append(mods, payload(`{"customer":42,"note":"a\u0000b"}`))
		}
		ins = append(ins, job("q", mods...))
	}
	ins = h.insert(ins...)
	h.insert(job("other", typ("report"), tags("vip")))
	// Some finish, so a filter spans memory and disk in the embedded store.
	for i := 0; i < 30; i += 4 {
		h.finish(ins[i].ID, spool.StateDead, at(time.Second))
	}

	// collect pages through a filter with small pages.
	collect := func(p store.ListJobsParams) []string {
		t.Helper()
		var out []string
		for range 100 {
			recs, next, err := h.s.ListJobs(h.ctx, p)
			require.NoError(t, err)
			require.LessOrEqual(t, len(recs), p.Limit)
			for _, r := range recs {
				require.Empty(t, r.Payload, "a listed job has no payload")
				other := p
				other.PayloadField = ""
				require.True(t, other.Matches(&r.Job), "job %s does not pass the filter", r.ID)
				if p.PayloadField != "" {
					require.True(t, store.PayloadEquals(h.get(r.ID).Payload, p.PayloadField, []byte(p.PayloadValue)),
						"job %s's payload does not pass the filter", r.ID)
				}
				out = append(out, r.ID)
			}
			if next == "" {
				return out
			}
			p.After = next
		}
		t.Fatal("no last page after 100 pages")
		return nil
	}
	expect := func(keep func(i int, r *store.Record) bool) []string {
		var out []string
		for i, r := range ins {
			if keep(i, h.get(r.ID)) {
				out = append(out, r.ID)
			}
		}
		return out
	}
	dead := func(i int) bool { return i%4 == 0 }

	require.Equal(t, expect(func(i int, _ *store.Record) bool { return i%2 == 0 }),
		collect(store.ListJobsParams{Queue: "q", Type: "report", Limit: 4}))
	require.Equal(t, expect(func(i int, _ *store.Record) bool { return i%3 == 0 }),
		collect(store.ListJobsParams{Queue: "q", Tag: "vip", Limit: 3}))
	require.Equal(t, expect(func(i int, _ *store.Record) bool { return i%5 == 0 }),
		collect(store.ListJobsParams{Queue: "q", OrderingKey: "user-1", Limit: 2}))
	require.Equal(t, expect(func(i int, _ *store.Record) bool { return i%2 == 0 && i%3 == 0 && dead(i) }),
		collect(store.ListJobsParams{Queue: "q", Type: "report", Tag: "vip", State: spool.StateDead, Limit: 1}))
	require.Equal(t, expect(func(i int, _ *store.Record) bool { return i%2 == 0 && !dead(i) }),
		collect(store.ListJobsParams{Queue: "q", Type: "report", State: spool.StateReady, Limit: 5}))
	require.Equal(t, expect(func(i int, _ *store.Record) bool { return i%6 == 0 || i%6 == 3 || i%6 == 5 }),
		collect(store.ListJobsParams{Queue: "q", PayloadField: "customer", PayloadValue: "42", Limit: 2}))
	require.Equal(t, expect(func(i int, _ *store.Record) bool { return i%6 == 5 }),
		collect(store.ListJobsParams{Queue: "q", PayloadField: "note", PayloadValue: `"a\u0000b"`, Limit: 2}))
	require.Equal(t, expect(func(i int, _ *store.Record) bool { return i%6 == 1 }),
		collect(store.ListJobsParams{Queue: "q", PayloadField: "customer", PayloadValue: `"42"`, Limit: 3}))
	require.Equal(t, expect(func(i int, _ *store.Record) bool { return (i%6 == 0 || i%6 == 3) && dead(i) }),
		collect(store.ListJobsParams{Queue: "q", State: spool.StateDead, PayloadField: "who", PayloadValue: `{"b":[1.0,"x"],"a":null}`, Limit: 1}))
	require.Equal(t, expect(func(i int, _ *store.Record) bool { return i%6 == 0 && i%2 == 0 && i%3 == 0 }),
		collect(store.ListJobsParams{Queue: "q", Type: "report", Tag: "vip", PayloadField: "customer", PayloadValue: "42", Limit: 4}))
	require.Equal(t, []string{ins[12].ID},
		collect(store.ListJobsParams{Queue: "q", PayloadField: "n", PayloadValue: "12.0", Limit: 4}))
	require.Empty(t, collect(store.ListJobsParams{Queue: "q", PayloadField: "customer", PayloadValue: "43", Limit: 5}))
	require.Empty(t, collect(store.ListJobsParams{Queue: "q", PayloadField: "to", PayloadValue: `"bob@example.com"`, Limit: 5}))
	require.Empty(t, collect(store.ListJobsParams{Queue: "q", Tag: "none", Limit: 5}))
	require.Empty(t, collect(store.ListJobsParams{Queue: "nope", Tag: "a", Limit: 5}))
}
