package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func testInsert(t *testing.T, newStore NewStore) {
	t.Run("RoundTrip", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("mail", func(r *store.Record) {
			r.Priority = 7
			r.Attempt = 2
			r.MaxAttempts = 9
			r.Timeout = spool.Duration(90 * time.Second)
			r.Backoff = &spool.Backoff{Base: spool.Duration(time.Second), Max: spool.Duration(time.Minute)}
			r.IdempotencyKey = "order-42"
			r.OrderingKey = "customer-7"
			r.DependsOn = []string{newID(), newID()}
			r.Tags = []string{"billing", "eu"}
			r.CallbackURL = "https://example.com/hooks/spool"
			r.Errors = []spool.AttemptError{{Attempt: 1, Error: "smtp timeout", At: at(-time.Minute)}}
			r.Progress = &spool.Progress{Percent: 12.5, Message: "warming up", UpdatedAt: at(-time.Second)}
			r.CreatedAt = at(-time.Hour)
			r.RunAt = at(-time.Hour)
			r.ReadyAt = ptr(at(-30 * time.Minute))
			r.Payload = json.RawMessage(`{"to":"ada@example.com","n":[1,2,3],"nested":{"ok":true}}`)
		})
		res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{in}})
		require.NoError(t, err)
		require.Len(t, res, 1)
		require.False(t, res[0].Existing)
		requireSameJob(t, in, res[0].Record, "insert result")
		require.Empty(t, res[0].Record.Token)

		got := h.get(in.ID)
		requireSameJob(t, in, got, "get")
		require.Empty(t, got.Token)
		require.Equal(t, res[0].Record.Rev, got.Rev)
	})

	t.Run("FreshBatchRoundTrip", func(t *testing.T) {
		// A batch as an enqueue makes it (no attempt, lease, errors,
		// progress or result), with every optional field set on some
		// jobs and left out on others: stores may take another path for
		// such batches, and every value must come back as stored.
		h := begin(t, newStore)
		var recs []*store.Record
		for i := range 12 {
			recs = append(recs, job("fresh-batch", func(r *store.Record) {
				r.Priority = i%5 - 2
				r.MaxAttempts = i + 1
				r.CreatedAt = at(time.Duration(i)*time.Second + 123456*time.Microsecond)
				r.RunAt = r.CreatedAt
				r.ReadyAt = ptr(r.CreatedAt)
				switch i % 4 {
				case 0:
					r.Payload = nil
					r.Timeout = spool.Duration(90 * time.Second)
					r.Backoff = &spool.Backoff{Base: spool.Duration(time.Second), Max: spool.Duration(time.Minute)}
				case 1:
					r.IdempotencyKey = fmt.Sprintf("key-%d \"quoted\" \\ é", i)
					r.OrderingKey = "customer-7"
					r.Tags = []string{"billing", `a "quoted", {braced} \ tag`, "ünïcode", ""}
					r.CallbackURL = "https://example.com/hooks/spool"
				case 2:
					r.State = spool.StateWaiting
					r.ReadyAt = nil
					r.DependsOn = []string{newID(), newID()}
				case 3:
					r.State = spool.StateScheduled
					r.ReadyAt = nil
					r.RunAt = time.Date(1969, time.July, 20, 20, 17, 40, 999999000, time.UTC)
					r.Payload = json.RawMessage(`"` + strings.Repeat("x", 3000) + `"`)
				}
			}))
		}
		out := h.insert(recs...)
		require.Len(t, out, len(recs))
		for i, r := range recs {
			require.Equal(t, r.ID, out[i].ID)
			requireSameJob(t, r, out[i], "insert result %d", i)
			requireSameJob(t, r, h.get(r.ID), "get %d", i)
		}
		require.Equal(t, want(spool.StateReady, 6, spool.StateWaiting, 3, spool.StateScheduled, 3), h.counts("fresh-batch"))
	})

	t.Run("EveryInsertableState", func(t *testing.T) {
		h := begin(t, newStore)
		recs := []*store.Record{
			job("q"),
			job("q", scheduled(at(time.Hour))),
			job("q", state(spool.StateWaiting), func(r *store.Record) { r.DependsOn = []string{newID()} }),
		}
		h.insert(recs...)
		for _, r := range recs {
			requireSameJob(t, r, h.get(r.ID))
		}
		require.Equal(t, want(spool.StateReady, 1, spool.StateScheduled, 1, spool.StateWaiting, 1), h.counts("q"))
	})

	t.Run("BatchKeepsOrder", func(t *testing.T) {
		h := begin(t, newStore)
		recs := []*store.Record{job("q", payload(`{"i":0}`)), job("q", payload(`{"i":1}`)), job("q", payload(`{"i":2}`))}
		out := h.insert(recs...)
		for i := range recs {
			require.Equal(t, recs[i].ID, out[i].ID)
			requireSameJob(t, recs[i], h.get(recs[i].ID))
		}
	})

	t.Run("IDTwiceInOneBatch", func(t *testing.T) {
		h := begin(t, newStore)
		a, b, c := job("q"), job("q"), job("q")
		for _, batch := range [][]*store.Record{
			{a, b, c, dupID(b)},
			{c, b, a, dupID(c)}, // ids not in ascending order
			{a, dupID(a)},
		} {
			_, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: batch})
			require.ErrorIs(t, err, spool.ErrInvalid)
			require.ErrorContains(t, err, "twice")
			for _, r := range batch {
				h.requireGone(r.ID)
			}
		}
		h.insert(c, b, a)
		require.Equal(t, want(spool.StateReady, 3), h.counts("q"))
	})

	t.Run("IDOfAStoredJob", func(t *testing.T) {
		h := begin(t, newStore)
		low := job("q", func(r *store.Record) { r.ID = "00000000-0000-7000-8000-000000000001" })
		a, b := job("q"), job("q")
		h.insert(a, b)
		h.finish(a.ID, spool.StateSucceeded, t0)
		// A job not yet finished and a finished one hold their ids; a
		// new id below every stored one is free.
		for _, taken := range []*store.Record{b, a} {
			_, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("q"), dupID(taken)}})
			require.ErrorIs(t, err, spool.ErrConflict, "id of job %s", taken.ID)
		}
		h.insert(low)
		requireSameJob(t, low, h.get(low.ID))
		require.Equal(t, want(spool.StateReady, 2, spool.StateSucceeded, 1), h.counts("q"))
	})

	t.Run("NilPayload", func(t *testing.T) {
		h := begin(t, newStore)
		r := job("q", func(r *store.Record) { r.Payload = nil })
		h.insert(r)
		require.Empty(t, h.get(r.ID).Payload)
	})

	t.Run("GetUnknown", func(t *testing.T) {
		h := begin(t, newStore)
		h.requireGone(newID())
	})

	t.Run("CallersDoNotShareMemory", func(t *testing.T) {
		h := begin(t, newStore)
		in := job("q", func(r *store.Record) { r.Tags = []string{"a", "b"} })
		res := h.insert(in)[0]
		in.Payload[2] = 'X'
		in.Tags[0] = "changed-input"
		*in.ReadyAt = at(time.Hour)
		res.Payload[2] = 'Y'
		res.Tags[1] = "changed-result"
		g := h.get(in.ID)
		require.JSONEq(t, `{"to":"ada@example.com"}`, string(g.Payload))
		require.Equal(t, []string{"a", "b"}, g.Tags)
		requireTime(t, t0, g.ReadyAt)
		g.Tags[0] = "changed-get"
		g.Payload[2] = 'Z'
		g2 := h.get(in.ID)
		require.Equal(t, []string{"a", "b"}, g2.Tags)
		require.JSONEq(t, `{"to":"ada@example.com"}`, string(g2.Payload))
	})

	t.Run("CreatesQueue", func(t *testing.T) {
		h := begin(t, newStore)
		_, err := h.s.Queue(h.ctx, "fresh")
		require.ErrorIs(t, err, spool.ErrNotFound)
		h.insert(job("fresh"))
		q, err := h.s.Queue(h.ctx, "fresh")
		require.NoError(t, err)
		require.Equal(t, "fresh", q.Name)
		qs, err := h.s.Queues(h.ctx)
		require.NoError(t, err)
		require.Contains(t, queueNames(qs), "fresh")
	})

	testInsertDepth(t, newStore)
	testInsertIdempotency(t, newStore)
}

func queueNames(qs []*store.QueueRecord) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.Name
	}
	return out
}

func testInsertDepth(t *testing.T, newStore NewStore) {
	t.Run("MaxDepthAllOrNothing", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("q"), job("q"))
		a, b, other := job("q"), job("q"), job("other")
		_, err := h.s.Insert(h.ctx, store.InsertParams{
			Jobs:     []*store.Record{other, a, b},
			MaxDepth: map[string]int64{"q": 3, "other": 10},
		})
		require.ErrorIs(t, err, spool.ErrQueueFull)
		var qf *spool.QueueFullError
		require.True(t, errors.As(err, &qf), "want a *spool.QueueFullError, got %T: %v", err, err)
		require.Equal(t, "q", qf.Queue)
		require.EqualValues(t, 2, qf.Depth)
		require.EqualValues(t, 3, qf.MaxDepth)
		for _, r := range []*store.Record{a, b, other} {
			h.requireGone(r.ID)
		}
		require.Equal(t, want(spool.StateReady, 2), h.counts("q"))

		// Exactly up to the limit is fine.
		res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{a}, MaxDepth: map[string]int64{"q": 3}})
		require.NoError(t, err)
		require.False(t, res[0].Existing)
		_, err = h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{b}, MaxDepth: map[string]int64{"q": 3}})
		require.ErrorIs(t, err, spool.ErrQueueFull)
	})

	t.Run("MaxDepthCountsOnlyNonTerminal", func(t *testing.T) {
		h := begin(t, newStore)
		ready, sched := job("q"), job("q", scheduled(at(time.Hour)))
		h.insert(ready, sched)
		leased := h.lease([]string{"q"}, 1, t0)
		require.Len(t, leased, 1)
		limit := map[string]int64{"q": 2}
		_, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("q")}, MaxDepth: limit})
		require.ErrorIs(t, err, spool.ErrQueueFull, "active and scheduled jobs count")

		h.finish(ready.ID, spool.StateSucceeded, at(time.Second))
		_, err = h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("q")}, MaxDepth: limit})
		require.NoError(t, err, "a terminal job leaves room")
		_, err = h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("q")}, MaxDepth: limit})
		require.ErrorIs(t, err, spool.ErrQueueFull)
	})

	t.Run("MaxDepthOnlyForQueuesInMap", func(t *testing.T) {
		h := begin(t, newStore)
		recs := make([]*store.Record, 20)
		for i := range recs {
			recs[i] = job("unbounded")
		}
		res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: recs, MaxDepth: map[string]int64{"elsewhere": 1}})
		require.NoError(t, err)
		require.Len(t, res, 20)
	})
}

func testInsertIdempotency(t *testing.T, newStore NewStore) {
	t.Run("IdempotencyKeyReturnsOriginal", func(t *testing.T) {
		h := begin(t, newStore)
		orig := job("q", key("k1"), payload(`{"v":"original"}`))
		h.insert(orig)
		again := job("q", key("k1"), payload(`{"v":"second"}`))
		res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{again}})
		require.NoError(t, err)
		require.True(t, res[0].Existing)
		requireSameJob(t, orig, res[0].Record)
		h.requireGone(again.ID)
		require.Equal(t, want(spool.StateReady, 1), h.counts("q"))
	})

	t.Run("IdempotencyKeyIsPerQueue", func(t *testing.T) {
		h := begin(t, newStore)
		a, b := job("q1", key("k")), job("q2", key("k"))
		h.insert(a)
		res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{b}})
		require.NoError(t, err)
		require.False(t, res[0].Existing)
		require.Equal(t, b.ID, res[0].Record.ID)
		h.get(b.ID)
	})

	t.Run("IdempotencyKeyTwiceInOneBatch", func(t *testing.T) {
		h := begin(t, newStore)
		a, b, c := job("q", key("k"), payload(`{"n":1}`)), job("q", key("k"), payload(`{"n":2}`)), job("q")
		res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{a, b, c}})
		require.NoError(t, err)
		require.Len(t, res, 3)
		require.False(t, res[0].Existing)
		require.True(t, res[1].Existing)
		require.Equal(t, a.ID, res[1].Record.ID)
		requireSameJob(t, a, res[1].Record)
		require.False(t, res[2].Existing)
		h.requireGone(b.ID)
		require.Equal(t, want(spool.StateReady, 2), h.counts("q"))
	})

	t.Run("IdempotentDuplicateDoesNotCountAgainstDepth", func(t *testing.T) {
		h := begin(t, newStore)
		limit := map[string]int64{"q": 1}
		a := job("q", key("k"))
		// Two copies in one batch fit a queue of one...
		res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{a, job("q", key("k"))}, MaxDepth: limit})
		require.NoError(t, err)
		require.True(t, res[1].Existing)
		// ... and so does a later retry of the full queue's only job.
		res, err = h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("q", key("k"))}, MaxDepth: limit})
		require.NoError(t, err)
		require.True(t, res[0].Existing)
		require.Equal(t, a.ID, res[0].Record.ID)
	})

	t.Run("IdempotencyKeyOfTerminalJobStillHolds", func(t *testing.T) {
		h := begin(t, newStore)
		a := job("q", key("k"))
		h.insert(a)
		h.finish(a.ID, spool.StateSucceeded, at(time.Second))
		res, err := h.s.Insert(h.ctx, store.InsertParams{Jobs: []*store.Record{job("q", key("k"))}})
		require.NoError(t, err)
		require.True(t, res[0].Existing)
		require.Equal(t, a.ID, res[0].Record.ID)
		require.Equal(t, spool.StateSucceeded, res[0].Record.State)
	})
}

// dupID is a new job with r's id.
func dupID(r *store.Record) *store.Record {
	return job(r.Queue, func(d *store.Record) { d.ID = r.ID })
}
