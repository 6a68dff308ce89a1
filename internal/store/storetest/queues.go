package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func fullConfig() spool.QueueConfig {
	return spool.QueueConfig{
		MaxDepth:    ptr(int64(5000)),
		Retention:   ptr(spool.Duration(48 * time.Hour)),
		Paused:      ptr(true),
		MaxAttempts: ptr(12),
		Backoff:     &spool.Backoff{Base: spool.Duration(2 * time.Second), Max: spool.Duration(10 * time.Minute)},
		// The dead-letter queue and the attributes other protocols keep
		// (the SQS API's) are stored like every setting.
		DeadLetterQueue: ptr("q-dead"),
		Attributes:      map[string]string{"sqs.attr.VisibilityTimeout": "45", "sqs.tag.team": "=billing"},
	}
}

func testQueues(t *testing.T, newStore NewStore) {
	t.Run("UnknownQueue", func(t *testing.T) {
		h := begin(t, newStore)
		_, err := h.s.Queue(h.ctx, "nope")
		require.ErrorIs(t, err, spool.ErrNotFound)
		qs, err := h.s.Queues(h.ctx)
		require.NoError(t, err)
		require.Empty(t, qs)
	})

	t.Run("Usage", func(t *testing.T) {
		h := begin(t, newStore)
		u, err := h.s.Usage(h.ctx)
		require.NoError(t, err)
		require.Equal(t, store.Usage{}, u)

		noPayload := func(r *store.Record) { r.Payload = nil }
		a := h.insert(job("q", payload(`{"n":1}`)), job("q", payload(`{"pad":"xxxxxxxxxx"}`)),
			job("r", scheduled(at(time.Hour)), noPayload))[0]
		require.NoError(t, h.s.SetQueueConfig(h.ctx, "cfg", spool.QueueConfig{Paused: ptr(true)}))
		u, err = h.s.Usage(h.ctx)
		require.NoError(t, err)
		require.Equal(t, store.Usage{Queues: 3, Unfinished: 3, PayloadBytes: 7 + 20}, u)

		h.lease([]string{"q"}, 1, t0)
		u, err = h.s.Usage(h.ctx)
		require.NoError(t, err)
		require.Equal(t, store.Usage{Queues: 3, Unfinished: 3, PayloadBytes: 27}, u, "an active job is not finished")
		h.finish(a.ID, spool.StateSucceeded, at(time.Second))
		u, err = h.s.Usage(h.ctx)
		require.NoError(t, err)
		require.Equal(t, store.Usage{Queues: 3, Unfinished: 2, PayloadBytes: 20}, u, "a finished job no longer counts")
	})

	t.Run("SetQueueConfigCreatesAndRoundTrips", func(t *testing.T) {
		h := begin(t, newStore)
		cfg := fullConfig()
		require.NoError(t, h.s.SetQueueConfig(h.ctx, "cfg", cfg))
		q, err := h.s.Queue(h.ctx, "cfg")
		require.NoError(t, err)
		require.Equal(t, "cfg", q.Name)
		require.Equal(t, fullConfig(), q.Config)
		require.Equal(t, want(), fullCounts(q.Counts))
		require.True(t, q.OldestReady.IsZero())

		// Overrides are replaced as a whole; nil fields are unset.
		require.NoError(t, h.s.SetQueueConfig(h.ctx, "cfg", spool.QueueConfig{Paused: ptr(false)}))
		q, err = h.s.Queue(h.ctx, "cfg")
		require.NoError(t, err)
		require.Equal(t, spool.QueueConfig{Paused: ptr(false)}, q.Config)
	})

	t.Run("SetQueueConfigKeepsJobs", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("q"), job("q"))
		require.NoError(t, h.s.SetQueueConfig(h.ctx, "q", fullConfig()))
		q, err := h.s.Queue(h.ctx, "q")
		require.NoError(t, err)
		require.Equal(t, fullConfig(), q.Config)
		require.Equal(t, want(spool.StateReady, 2), fullCounts(q.Counts))
	})

	t.Run("QueueOfInsertHasNoOverrides", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("q"))
		q, err := h.s.Queue(h.ctx, "q")
		require.NoError(t, err)
		require.Equal(t, spool.QueueConfig{}, q.Config)
	})

	t.Run("ConfigIsACopy", func(t *testing.T) {
		h := begin(t, newStore)
		cfg := fullConfig()
		require.NoError(t, h.s.SetQueueConfig(h.ctx, "q", cfg))
		*cfg.MaxDepth = 1
		cfg.Attributes["sqs.attr.VisibilityTimeout"] = "1"
		*cfg.DeadLetterQueue = "other"
		q, err := h.s.Queue(h.ctx, "q")
		require.NoError(t, err)
		*q.Config.MaxAttempts = 99
		q.Config.Backoff.Base = 0
		q.Config.Attributes["sqs.tag.team"] = "=changed"
		*q.Config.DeadLetterQueue = "changed"
		q.Counts[spool.StateReady] = 1000
		q, err = h.s.Queue(h.ctx, "q")
		require.NoError(t, err)
		require.Equal(t, fullConfig(), q.Config)
		require.Zero(t, q.Counts[spool.StateReady])
	})

	t.Run("QueuesByName", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("m"), job("b"))
		require.NoError(t, h.s.SetQueueConfig(h.ctx, "z", spool.QueueConfig{}))
		require.NoError(t, h.s.SetQueueConfig(h.ctx, "a.b-c_d", spool.QueueConfig{Paused: ptr(true)}))
		h.insert(job("m"))
		qs, err := h.s.Queues(h.ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"a.b-c_d", "b", "m", "z"}, queueNames(qs))
		require.Equal(t, want(spool.StateReady, 2), fullCounts(qs[2].Counts))
		require.Equal(t, spool.QueueConfig{Paused: ptr(true)}, qs[0].Config)
	})

	t.Run("CountsAfterMixedOperations", func(t *testing.T) {
		h := begin(t, newStore)
		recs := []*store.Record{
			job("q", priority(9)), job("q", priority(9)), job("q"), job("q"), job("q"),
			job("q", scheduled(at(time.Minute))), job("q", scheduled(at(time.Hour))),
			job("q", state(spool.StateWaiting)),
			job("other"),
		}
		h.insert(recs...)
		require.Equal(t, want(spool.StateReady, 5, spool.StateScheduled, 2, spool.StateWaiting, 1), h.counts("q"))

		l := h.lease([]string{"q"}, 2, t0) // the two priority-9 jobs
		require.Len(t, l, 2)
		h.finish(l[0].ID, spool.StateSucceeded, at(time.Second))
		_, err := h.s.PromoteDue(h.ctx, at(time.Minute), 10)
		require.NoError(t, err)
		h.finish(recs[2].ID, spool.StateCancelled, at(time.Second))
		h.finish(recs[7].ID, spool.StateDead, at(time.Second))
		stale := h.get(recs[3].ID)
		stale.Rev++
		stale.State = spool.StateDead
		_, errs, err := h.s.Update(h.ctx, []store.Change{{Record: stale}})
		require.NoError(t, err)
		require.ErrorIs(t, errs[0], spool.ErrConflict, "a stale change changes no count")
		require.Equal(t, want(
			spool.StateReady, 3, // recs 3, 4 and the promoted one
			spool.StateScheduled, 1,
			spool.StateActive, 1,
			spool.StateSucceeded, 1,
			spool.StateCancelled, 1,
			spool.StateDead, 1,
		), h.counts("q"))
		require.Equal(t, want(spool.StateReady, 1), h.counts("other"))

		n, err := h.s.Purge(h.ctx, "q", at(time.Hour), 10)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.Equal(t, want(spool.StateReady, 3, spool.StateScheduled, 1, spool.StateActive, 1), h.counts("q"))
	})

	t.Run("OldestReady", func(t *testing.T) {
		h := begin(t, newStore)
		first := job("q", priority(5), readyAt(at(time.Second)))
		h.insert(
			job("q", readyAt(at(3*time.Second))),
			first,
			job("q", readyAt(at(2*time.Second))),
			job("q", scheduled(at(-time.Hour))),
		)
		q, err := h.s.Queue(h.ctx, "q")
		require.NoError(t, err)
		require.True(t, at(time.Second).Equal(q.OldestReady), "got %v", q.OldestReady)

		require.Equal(t, []string{first.ID}, ids(h.lease([]string{"q"}, 1, at(time.Minute))))
		q, err = h.s.Queue(h.ctx, "q")
		require.NoError(t, err)
		require.True(t, at(2*time.Second).Equal(q.OldestReady), "got %v", q.OldestReady)

		h.lease([]string{"q"}, 10, at(time.Minute))
		q, err = h.s.Queue(h.ctx, "q")
		require.NoError(t, err)
		require.True(t, q.OldestReady.IsZero(), "no ready job: zero, got %v", q.OldestReady)
	})
}
