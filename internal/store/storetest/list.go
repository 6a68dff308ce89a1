package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func testListJobs(t *testing.T, newStore NewStore) {
	t.Run("ByStateAndAll", func(t *testing.T) {
		h := begin(t, newStore)
		byState := map[spool.State][]string{}
		add := func(r *store.Record) {
			h.insert(r)
			byState[r.State] = append(byState[r.State], r.ID)
		}
		for range 3 {
			add(job("q"))
		}
		add(job("q", scheduled(at(time.Hour))))
		add(job("q", scheduled(at(time.Minute))))
		add(job("q", state(spool.StateWaiting)))
		h.insert(job("other"))

		// One ready job becomes active, another dead.
		l := h.lease([]string{"q"}, 1, t0)[0]
		byState[spool.StateReady] = slices.DeleteFunc(byState[spool.StateReady], func(id string) bool { return id == l.ID })
		byState[spool.StateActive] = []string{l.ID}
		dead := byState[spool.StateReady][0]
		byState[spool.StateReady] = byState[spool.StateReady][1:]
		h.finish(dead, spool.StateDead, at(time.Second))
		byState[spool.StateDead] = []string{dead}

		var every []string
		for _, st := range spool.States {
			wantIDs := slices.Clone(byState[st])
			slices.Sort(wantIDs)
			every = append(every, wantIDs...)
			got := h.listAll("q", st)
			if len(wantIDs) == 0 {
				require.Empty(t, got, "state %s", st)
				continue
			}
			require.Equal(t, wantIDs, got, "state %s", st)
		}
		slices.Sort(every)
		require.Equal(t, every, h.listAll("q", ""))
	})

	t.Run("RecordsMatchGet", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q", priority(4), key("k"), func(r *store.Record) { r.Tags = []string{"t"} })
		h.insert(in)
		recs, _, err := h.s.ListJobs(h.ctx, store.ListJobsParams{Queue: "q", Limit: 10})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		g := h.get(in.ID)
		// Listed records need not carry payload or result.
		g.Payload, recs[0].Payload = nil, nil
		requireSameJob(t, g, recs[0])
		require.Equal(t, g.Rev, recs[0].Rev)
	})

	t.Run("Pagination", func(t *testing.T) {
		for _, tc := range []struct {
			name         string
			jobs, limit  int
			wantPages    int
			filter       spool.State
			extraOfOther int
		}{
			{name: "Remainder", jobs: 25, limit: 7, wantPages: 4},
			{name: "ExactMultiple", jobs: 21, limit: 7, wantPages: 3},
			{name: "OnePage", jobs: 3, limit: 10, wantPages: 1},
			{name: "LimitOne", jobs: 4, limit: 1, wantPages: 4},
			{name: "FilteredState", jobs: 10, limit: 4, wantPages: 3, filter: spool.StateScheduled, extraOfOther: 6},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := begin(t, newStore)
				var wantIDs []string
				for i := range tc.jobs {
					var r *store.Record
					if tc.filter == spool.StateScheduled {
						r = job("q", scheduled(at(time.Duration(i)*time.Second)))
					} else {
						r = job("q")
					}
					h.insert(r)
					wantIDs = append(wantIDs, r.ID)
				}
				for range tc.extraOfOther {
					h.insert(job("q"))
				}
				slices.Sort(wantIDs)
				var got []string
				cursor, pages := "", 0
				for {
					recs, next, err := h.s.ListJobs(h.ctx, store.ListJobsParams{Queue: "q", State: tc.filter, After: cursor, Limit: tc.limit})
					require.NoError(t, err)
					require.LessOrEqual(t, len(recs), tc.limit)
					require.NotEmpty(t, recs, "no empty page after a non-empty cursor")
					pages++
					got = append(got, ids(recs)...)
					if next == "" {
						break
					}
					require.Len(t, recs, tc.limit, "only the last page is short")
					require.Less(t, pages, 100, "pagination does not end")
					cursor = next
				}
				require.Equal(t, wantIDs, got, "every job exactly once, in id order")
				require.Equal(t, tc.wantPages, pages)
			})
		}
	})

	t.Run("UnknownQueueIsEmpty", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("q"))
		recs, next, err := h.s.ListJobs(h.ctx, store.ListJobsParams{Queue: "nope", Limit: 10})
		require.NoError(t, err)
		require.Empty(t, recs)
		require.Empty(t, next)
	})

	t.Run("CursorOfDeletedJob", func(t *testing.T) {
		h := begin(t, newStore)
		var all []string
		for range 6 {
			r := job("q")
			h.insert(r)
			all = append(all, r.ID)
		}
		slices.Sort(all)
		page, next, err := h.s.ListJobs(h.ctx, store.ListJobsParams{Queue: "q", Limit: 3})
		require.NoError(t, err)
		require.Equal(t, all[:3], ids(page))
		// The job named by the cursor goes away before the next page.
		h.finish(next, spool.StateCancelled, t0)
		n, err := h.s.Purge(h.ctx, "q", at(time.Second), 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		page, next, err = h.s.ListJobs(h.ctx, store.ListJobsParams{Queue: "q", After: next, Limit: 3})
		require.NoError(t, err)
		require.Equal(t, all[3:], ids(page))
		require.Empty(t, next)
	})

	t.Run("ReflectsStateChanges", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q")
		h.insert(in)
		require.Equal(t, []string{in.ID}, h.listAll("q", spool.StateReady))
		h.lease([]string{"q"}, 1, t0)
		require.Empty(t, h.listAll("q", spool.StateReady))
		require.Equal(t, []string{in.ID}, h.listAll("q", spool.StateActive))
		h.finish(in.ID, spool.StateSucceeded, at(time.Second))
		require.Empty(t, h.listAll("q", spool.StateActive))
		require.Equal(t, []string{in.ID}, h.listAll("q", spool.StateSucceeded))
		require.Equal(t, []string{in.ID}, h.listAll("q", ""))
	})
}
