package storetest

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// schedule builds a schedule record of queue "cron-q", next firing at
// t0+1m.
func schedule(name string) *store.ScheduleRecord {
	next := at(time.Minute)
	return &store.ScheduleRecord{Schedule: spool.Schedule{
		Name:     name,
		Cron:     "* * * * *",
		Timezone: "UTC",
		Missed:   spool.MissedSkip,
		Job: spool.ScheduleJob{Queue: "cron-q", EnqueueRequest: spool.EnqueueRequest{
			Type: "report.build", Payload: json.RawMessage(`{"kind":"daily"}`), Tags: []string{"nightly"},
		}},
		NextFireAt: &next,
		CreatedAt:  t0,
		UpdatedAt:  t0,
	}}
}

// firingJob is the job of a firing at fireAt.
func firingJob(name string, fireAt time.Time) *store.Record {
	return job("cron-q", key("spool-schedule:"+name+":"+fireAt.Format(time.RFC3339Nano)))
}

func (h *h) queueJobs(queue string) []*store.Record {
	h.t.Helper()
	recs, _, err := h.s.ListJobs(h.ctx, store.ListJobsParams{Queue: queue, Limit: 1000})
	require.NoError(h.t, err)
	return recs
}

func testSchedules(t *testing.T, newStore NewStore) {
	t.Run("PutGetListDelete", func(t *testing.T) {
		h := begin(t, newStore)
		list, err := h.s.ListSchedules(h.ctx)
		require.NoError(t, err)
		require.Empty(t, list)
		_, err = h.s.GetSchedule(h.ctx, "nightly")
		require.ErrorIs(t, err, spool.ErrNotFound)
		require.ErrorIs(t, h.s.DeleteSchedule(h.ctx, "nightly"), spool.ErrNotFound)

		b, err := h.s.PutSchedule(h.ctx, schedule("nightly"))
		require.NoError(t, err)
		require.Equal(t, uint64(1), b.Rev)
		a, err := h.s.PutSchedule(h.ctx, schedule("hourly"))
		require.NoError(t, err)

		// Creating it again, or writing an old revision, conflicts.
		_, err = h.s.PutSchedule(h.ctx, schedule("nightly"))
		require.ErrorIs(t, err, spool.ErrConflict)
		stale := schedule("nightly")
		stale.Rev = 7
		_, err = h.s.PutSchedule(h.ctx, stale)
		require.ErrorIs(t, err, spool.ErrConflict)

		got, err := h.s.GetSchedule(h.ctx, "nightly")
		require.NoError(t, err)
		require.Equal(t, b.Rev, got.Rev)
		require.Equal(t, "report.build", got.Job.Type)
		require.JSONEq(t, `{"kind":"daily"}`, string(got.Job.Payload))
		require.Equal(t, []string{"nightly"}, got.Job.Tags)
		require.True(t, at(time.Minute).Equal(*got.NextFireAt))

		// Replace at the current revision.
		got.Cron = "0 3 * * *"
		got.NextFireAt = nil
		got.Paused = true
		up, err := h.s.PutSchedule(h.ctx, got)
		require.NoError(t, err)
		require.Equal(t, uint64(2), up.Rev)
		got, err = h.s.GetSchedule(h.ctx, "nightly")
		require.NoError(t, err)
		require.Equal(t, "0 3 * * *", got.Cron)
		require.True(t, got.Paused)
		require.Nil(t, got.NextFireAt)

		list, err = h.s.ListSchedules(h.ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, a.Name, list[0].Name)
		require.Equal(t, "nightly", list[1].Name)

		require.NoError(t, h.s.DeleteSchedule(h.ctx, "nightly"))
		_, err = h.s.GetSchedule(h.ctx, "nightly")
		require.ErrorIs(t, err, spool.ErrNotFound)
		_, err = h.s.FireSchedule(h.ctx, store.FireParams{Name: "nightly", Rev: 2, NextFireAt: at(time.Hour), Now: t0})
		require.ErrorIs(t, err, spool.ErrNotFound)
	})

	t.Run("FireInsertsJobAndAdvances", func(t *testing.T) {
		h := begin(t, newStore)
		sc, err := h.s.PutSchedule(h.ctx, schedule("s"))
		require.NoError(t, err)
		fireAt := at(time.Minute)
		j := firingJob("s", fireAt)
		res, err := h.s.FireSchedule(h.ctx, store.FireParams{
			Name: "s", Rev: sc.Rev, FireAt: fireAt, Job: j, MaxDepth: 10,
			NextFireAt: at(2 * time.Minute), Now: fireAt,
		})
		require.NoError(t, err)
		require.Nil(t, res.Full)
		require.False(t, res.Existing)
		require.Equal(t, j.ID, res.Job.ID)
		require.Equal(t, sc.Rev+1, res.Schedule.Rev)
		require.Equal(t, int64(1), res.Schedule.FiredCount)
		require.Equal(t, j.ID, res.Schedule.LastJobID)
		require.True(t, fireAt.Equal(*res.Schedule.LastFireAt))
		require.True(t, at(2*time.Minute).Equal(*res.Schedule.NextFireAt))

		stored, err := h.s.Get(h.ctx, j.ID)
		require.NoError(t, err)
		require.JSONEq(t, `{"to":"ada@example.com"}`, string(stored.Payload))
		got, err := h.s.GetSchedule(h.ctx, "s")
		require.NoError(t, err)
		require.Equal(t, res.Schedule.Rev, got.Rev)
		require.Equal(t, int64(1), got.FiredCount)

		// The same firing again, with the revision read before it: a
		// conflict, and nothing stored.
		_, err = h.s.FireSchedule(h.ctx, store.FireParams{
			Name: "s", Rev: sc.Rev, FireAt: fireAt, Job: firingJob("s", fireAt), MaxDepth: 10,
			NextFireAt: at(2 * time.Minute), Now: fireAt,
		})
		require.ErrorIs(t, err, spool.ErrConflict)
		require.Len(t, h.queueJobs("cron-q"), 1)
		q, err := h.s.Queue(h.ctx, "cron-q")
		require.NoError(t, err)
		require.Equal(t, int64(1), q.Counts[spool.StateReady])
	})

	t.Run("FireExactlyOnceUnderConcurrentCallers", func(t *testing.T) {
		h := begin(t, newStore)
		sc, err := h.s.PutSchedule(h.ctx, schedule("s"))
		require.NoError(t, err)
		fireAt := at(time.Minute)
		const callers = 8
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			won       int
			conflicts int
		)
		for range callers {
			wg.Go(func() {
				res, err := h.s.FireSchedule(h.ctx, store.FireParams{
					Name: "s", Rev: sc.Rev, FireAt: fireAt, Job: firingJob("s", fireAt), MaxDepth: 100,
					NextFireAt: at(2 * time.Minute), Now: fireAt,
				})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					require.NotNil(t, res.Job)
					won++
				case errors.Is(err, spool.ErrConflict):
					conflicts++
				default:
					t.Errorf("FireSchedule: %v", err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, 1, won)
		require.Equal(t, callers-1, conflicts)
		require.Len(t, h.queueJobs("cron-q"), 1)
		got, err := h.s.GetSchedule(h.ctx, "s")
		require.NoError(t, err)
		require.Equal(t, int64(1), got.FiredCount)
		require.Equal(t, sc.Rev+1, got.Rev)
	})

	t.Run("FullQueueRecordsMiss", func(t *testing.T) {
		h := begin(t, newStore)
		h.insert(job("cron-q"))
		sc, err := h.s.PutSchedule(h.ctx, schedule("s"))
		require.NoError(t, err)
		fireAt := at(time.Minute)
		res, err := h.s.FireSchedule(h.ctx, store.FireParams{
			Name: "s", Rev: sc.Rev, FireAt: fireAt, Job: firingJob("s", fireAt), MaxDepth: 1,
			NextFireAt: at(2 * time.Minute), Now: fireAt,
		})
		require.NoError(t, err)
		require.NotNil(t, res.Full)
		require.ErrorIs(t, res.Full, spool.ErrQueueFull)
		require.Equal(t, "cron-q", res.Full.Queue)
		require.Nil(t, res.Job)
		require.Equal(t, int64(0), res.Schedule.FiredCount)
		require.Equal(t, int64(1), res.Schedule.MissedCount)
		require.Equal(t, spool.MissedQueueFull, res.Schedule.LastMissedReason)
		require.True(t, fireAt.Equal(*res.Schedule.LastMissedAt))
		require.True(t, at(2*time.Minute).Equal(*res.Schedule.NextFireAt))
		require.Len(t, h.queueJobs("cron-q"), 1)
		got, err := h.s.GetSchedule(h.ctx, "s")
		require.NoError(t, err)
		require.Equal(t, int64(1), got.MissedCount)
		require.Equal(t, res.Schedule.Rev, got.Rev)
	})

	t.Run("SkippedFiringsCounted", func(t *testing.T) {
		h := begin(t, newStore)
		sc, err := h.s.PutSchedule(h.ctx, schedule("s"))
		require.NoError(t, err)
		res, err := h.s.FireSchedule(h.ctx, store.FireParams{
			Name: "s", Rev: sc.Rev, Skipped: 3, SkippedLast: at(3 * time.Minute), SkipReason: spool.MissedServerDown,
			NextFireAt: at(4 * time.Minute), Now: at(3*time.Minute + time.Second),
		})
		require.NoError(t, err)
		require.Nil(t, res.Job)
		require.Equal(t, int64(3), res.Schedule.MissedCount)
		require.Equal(t, spool.MissedServerDown, res.Schedule.LastMissedReason)
		require.True(t, at(3*time.Minute).Equal(*res.Schedule.LastMissedAt))
		require.True(t, at(4*time.Minute).Equal(*res.Schedule.NextFireAt))
		require.Empty(t, h.queueJobs("cron-q"))
	})

	t.Run("IdempotencyKeyIsSecondGuard", func(t *testing.T) {
		h := begin(t, newStore)
		fireAt := at(time.Minute)
		first := h.insert(firingJob("s", fireAt))[0]
		sc, err := h.s.PutSchedule(h.ctx, schedule("s"))
		require.NoError(t, err)
		res, err := h.s.FireSchedule(h.ctx, store.FireParams{
			Name: "s", Rev: sc.Rev, FireAt: fireAt, Job: firingJob("s", fireAt), MaxDepth: 10,
			NextFireAt: at(2 * time.Minute), Now: fireAt,
		})
		require.NoError(t, err)
		require.True(t, res.Existing)
		require.Equal(t, first.ID, res.Job.ID)
		require.Equal(t, first.ID, res.Schedule.LastJobID)
		require.Len(t, h.queueJobs("cron-q"), 1)
	})
}

// testSchedulesReopen: a schedule and the job of its firing survive Close
// and a new open, and the revision still guards the next firing.
func testSchedulesReopen(t *testing.T, open OpenStore) {
	t.Parallel()
	dir := t.TempDir()
	h := &h{t: t, s: open(t, dir), ctx: t.Context()}
	sc, err := h.s.PutSchedule(h.ctx, schedule("s"))
	require.NoError(t, err)
	fireAt := at(time.Minute)
	j := firingJob("s", fireAt)
	res, err := h.s.FireSchedule(h.ctx, store.FireParams{
		Name: "s", Rev: sc.Rev, FireAt: fireAt, Job: j, MaxDepth: 10, NextFireAt: at(2 * time.Minute), Now: fireAt,
	})
	require.NoError(t, err)
	require.NoError(t, h.s.Close())

	h.s = open(t, dir)
	got, err := h.s.GetSchedule(h.ctx, "s")
	require.NoError(t, err)
	require.Equal(t, res.Schedule.Rev, got.Rev)
	require.Equal(t, int64(1), got.FiredCount)
	require.Equal(t, j.ID, got.LastJobID)
	require.True(t, at(2*time.Minute).Equal(*got.NextFireAt))
	_, err = h.s.Get(h.ctx, j.ID)
	require.NoError(t, err)
	_, err = h.s.FireSchedule(h.ctx, store.FireParams{
		Name: "s", Rev: sc.Rev, FireAt: fireAt, Job: firingJob("s", fireAt), NextFireAt: at(2 * time.Minute), Now: fireAt,
	})
	require.ErrorIs(t, err, spool.ErrConflict)
	require.NoError(t, h.s.Close())
}
