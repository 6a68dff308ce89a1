package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func testLease(t *testing.T, newStore NewStore) {
	t.Run("SetsLeaseFields", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q", priority(3), func(r *store.Record) { r.Tags = []string{"x"} })
		ins := h.insert(in)[0]
		now, exp := at(time.Minute), at(time.Minute+45*time.Second)
		recs, err := h.s.Lease(h.ctx, store.LeaseParams{
			Queues: []string{"q"}, Max: 5, Worker: "host-1/pid-9", Now: now, ExpiresAt: exp, NewToken: newToken,
		})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		r := recs[0]

		wantJob := store.CloneJob(&in.Job)
		wantJob.State = spool.StateActive
		wantJob.Attempt = 1
		wantJob.Worker = "host-1/pid-9"
		wantJob.StartedAt = ptr(now)
		wantJob.LeaseExpiresAt = ptr(exp)
		requireSameJob(t, &store.Record{Job: wantJob}, r, "lease result, payload included")
		require.NotEmpty(t, r.Token)
		require.NotEqual(t, ins.Rev, r.Rev)

		g := h.get(in.ID)
		requireSameJob(t, r, g, "stored")
		require.Equal(t, r.Token, g.Token)
		require.Equal(t, r.Rev, g.Rev)
	})

	t.Run("ManyBodiesInOneLease", func(t *testing.T) {
		// Payloads and results of 40 jobs, some without a payload and
		// some with the result of an earlier attempt, in one lease.
		h := begin(t, newStore)
		var ins []*store.Record
		for i := range 40 {
			if i%5 == 0 {
				ins = append(ins, job("q", func(r *store.Record) { r.Payload = nil }))
			} else {
				ins = append(ins, job("q", payload(fmt.Sprintf(`{"n":%d}`, i))))
			}
		}
		h.insert(ins...)
		for i := 0; i < 40; i += 3 {
			r := h.get(ins[i].ID)
			r.Result = json.RawMessage(fmt.Sprintf(`{"partial":%d}`, i))
			h.update(r)
		}
		recs, err := h.s.Lease(h.ctx, store.LeaseParams{
			Queues: []string{"q"}, Max: 100, Worker: "w", Now: at(time.Minute), ExpiresAt: at(2 * time.Minute), NewToken: newToken,
		})
		require.NoError(t, err)
		require.Len(t, recs, 40)
		byID := make(map[string]*store.Record, len(recs))
		for _, r := range recs {
			byID[r.ID] = r
		}
		for i, in := range ins {
			r := byID[in.ID]
			require.NotNil(t, r, "job %d leased", i)
			if i%5 == 0 {
				require.Empty(t, r.Payload, "job %d has no payload", i)
			} else {
				requireJSON(t, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), r.Payload, "payload of job %d", i)
			}
			if i%3 == 0 {
				requireJSON(t, json.RawMessage(fmt.Sprintf(`{"partial":%d}`, i)), r.Result, "result of job %d", i)
			} else {
				require.Empty(t, r.Result, "job %d has no result", i)
			}
		}
	})

	t.Run("AttemptCountsUp", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q", func(r *store.Record) { r.Attempt = 4 })
		h.insert(in)
		r := h.lease([]string{"q"}, 1, t0)
		require.Len(t, r, 1)
		require.Equal(t, 5, r[0].Attempt)
	})

	t.Run("HigherPriorityFirst", func(t *testing.T) {
		h := begin(t, newStore)
		p0, p5, pm3, p5b := job("q", priority(0)), job("q", priority(5)), job("q", priority(-3)), job("q", priority(5))
		for _, r := range []*store.Record{p0, p5, pm3, p5b} {
			h.insert(r)
		}
		got := h.lease([]string{"q"}, 10, t0)
		require.Equal(t, []string{p5.ID, p5b.ID, p0.ID, pm3.ID}, ids(got))
	})

	t.Run("FIFOByInsertOrderNotID", func(t *testing.T) {
		h := begin(t, newStore)
		// Ids are generated in order and used backwards, so that a backend
		// ordering by id instead of insert order fails.
		idsDesc := []string{newID(), newID(), newID(), newID(), newID(), newID()}
		slices.Reverse(idsDesc)
		recs := make([]*store.Record, len(idsDesc))
		for i, id := range idsDesc {
			recs[i] = job("q", func(r *store.Record) { r.ID = id })
		}
		h.insert(recs[0])
		h.insert(recs[1:4]...) // same batch keeps its order
		h.insert(recs[4], recs[5])
		var got []string
		for range recs {
			r := h.lease([]string{"q"}, 1, t0)
			require.Len(t, r, 1)
			got = append(got, r[0].ID)
		}
		require.Equal(t, idsDesc, got)
	})

	t.Run("QueuesInPriorityOrder", func(t *testing.T) {
		h := begin(t, newStore)
		a1, a2 := job("a", priority(-5)), job("a", priority(-5))
		b1, b2 := job("b", priority(100)), job("b", priority(100))
		h.insert(b1, a1, b2, a2)
		got := h.lease([]string{"a", "b"}, 3, t0)
		require.Equal(t, []string{a1.ID, a2.ID, b1.ID}, ids(got), "queue a is emptied before b, whatever the priorities")
		got = h.lease([]string{"a", "b"}, 3, t0)
		require.Equal(t, []string{b2.ID}, ids(got))
	})

	t.Run("MaxRespected", func(t *testing.T) {
		h := begin(t, newStore)
		for range 5 {
			h.insert(job("q"))
		}
		require.Len(t, h.lease([]string{"q"}, 2, t0), 2)
		require.Len(t, h.lease([]string{"q"}, 10, t0), 3)
		require.Empty(t, h.lease([]string{"q"}, 10, t0))
	})

	t.Run("OnlyReadyAndDue", func(t *testing.T) {
		h := begin(t, newStore)
		sched := job("q", scheduled(at(time.Minute)))
		future := job("q", func(r *store.Record) { r.RunAt = at(2 * time.Minute) }) // ready, run_at ahead
		waiting := job("q", state(spool.StateWaiting))
		done := job("q", func(r *store.Record) { r.RunAt = at(-time.Hour) })
		h.insert(sched, future, waiting, done)
		h.finish(done.ID, spool.StateSucceeded, t0)
		require.Empty(t, h.lease([]string{"q"}, 10, t0))
		require.Empty(t, h.lease([]string{"q"}, 10, at(119*time.Second)), "the scheduled job is due but not ready")
		got := h.lease([]string{"q"}, 10, at(2*time.Minute))
		require.Equal(t, []string{future.ID}, ids(got), "run_at <= now is due")
		require.Empty(t, h.lease([]string{"q"}, 10, at(time.Hour)), "a scheduled job is never leased")
	})

	t.Run("NeverTwice", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("q"))
		require.Len(t, h.lease([]string{"q"}, 1, t0), 1)
		require.Empty(t, h.lease([]string{"q"}, 1, at(time.Hour)), "an active job is not leased again, even after its expiry")
	})

	t.Run("DistinctTokens", func(t *testing.T) {
		h := begin(t, newStore)
		for range 10 {
			h.insert(job("q"))
		}
		seen := map[string]bool{}
		for _, r := range h.lease([]string{"q"}, 10, t0) {
			require.NotEmpty(t, r.Token)
			require.False(t, seen[r.Token], "token %q given twice", r.Token)
			seen[r.Token] = true
		}
		require.Len(t, seen, 10)
	})

	t.Run("UnknownAndEmptyQueues", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("q"))
		require.Empty(t, h.lease([]string{"nope"}, 5, t0))
		got := h.lease([]string{"nope", "q"}, 5, t0)
		require.Len(t, got, 1)
	})

	t.Run("ConcurrentLeasersNeverShare", func(t *testing.T) {
		h := begin(t, newStore)
		const jobs, workers = 300, 16
		all := map[string]bool{}
		for i := 0; i < jobs; i += 50 {
			batch := make([]*store.Record, 50)
			for k := range batch {
				batch[k] = job(fmt.Sprintf("q%d", k%2), priority(k%3))
				all[batch[k].ID] = true
			}
			h.insert(batch...)
		}
		got := make([][]string, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for {
					recs, err := h.s.Lease(h.ctx, store.LeaseParams{
						Queues: []string{"q0", "q1"}, Max: 1 + w%4, Worker: fmt.Sprint("w", w),
						Now: t0, ExpiresAt: at(time.Minute), NewToken: newToken,
					})
					if err != nil {
						errs[w] = err
						return
					}
					if len(recs) == 0 {
						return
					}
					got[w] = append(got[w], ids(recs)...)
				}
			})
		}
		wg.Wait()
		seen := map[string]int{}
		for w := range workers {
			require.NoError(t, errs[w])
			for _, id := range got[w] {
				seen[id]++
			}
		}
		require.Len(t, seen, jobs)
		for id, n := range seen {
			require.True(t, all[id])
			require.Equal(t, 1, n, "job %s leased %d times", id, n)
		}
		c0, c1 := h.counts("q0"), h.counts("q1")
		require.EqualValues(t, jobs, c0[spool.StateActive]+c1[spool.StateActive])
		require.Zero(t, c0[spool.StateReady]+c1[spool.StateReady])
	})
}
