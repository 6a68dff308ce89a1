package engine_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/store/embedded"
)

func cronReq(expr, tz, queue string) spool.ScheduleRequest {
	return spool.ScheduleRequest{Cron: expr, Timezone: tz, Job: spool.ScheduleJob{Queue: queue,
		EnqueueRequest: spool.EnqueueRequest{Type: "report.build", Payload: json.RawMessage(`{"kind":"daily"}`)}}}
}

func (h *harness) putSchedule(t *testing.T, name string, req spool.ScheduleRequest) *spool.Schedule {
	t.Helper()
	s, _, err := h.e.PutSchedule(h.ctx, name, req)
	require.NoError(t, err)
	return s
}

// at sets the clock and runs a scheduler pass.
func (h *harness) at(t *testing.T, ts time.Time) {
	t.Helper()
	h.clock.Set(ts)
	require.NoError(t, h.e.RunSchedules(h.ctx))
}

func (h *harness) jobs(t *testing.T, queue string) []*spool.Job {
	t.Helper()
	l, err := h.e.ListJobs(h.ctx, engine.ListParams{Queue: queue, Limit: engine.MaxPageSize})
	require.NoError(t, err)
	return l.Jobs
}

func (h *harness) schedule(t *testing.T, name string) *spool.Schedule {
	t.Helper()
	s, err := h.e.GetSchedule(h.ctx, name)
	require.NoError(t, err)
	return s
}

func TestScheduleFiresOnTime(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0.5)
	s := h.putSchedule(t, "hourly", cronReq("0 * * * *", "", "reports"))
	require.Equal(t, "UTC", s.Timezone)
	require.Equal(t, spool.MissedSkip, s.Missed)
	require.Equal(t, t0.Add(time.Hour), *s.NextFireAt)

	h.at(t, t0.Add(time.Hour-time.Second))
	require.Empty(t, h.jobs(t, "reports"))
	h.at(t, t0.Add(time.Hour))
	jobs := h.jobs(t, "reports")
	require.Len(t, jobs, 1)
	require.Equal(t, "report.build", jobs[0].Type)
	require.JSONEq(t, `{"kind":"daily"}`, string(h.get(t, jobs[0].ID).Payload))
	require.Equal(t, spool.StateReady, jobs[0].State)
	require.Equal(t, "spool-schedule:hourly:2026-03-01T13:00:00Z", jobs[0].IdempotencyKey)

	// Another pass at the same instant fires nothing more.
	h.at(t, t0.Add(time.Hour+time.Second))
	require.Len(t, h.jobs(t, "reports"), 1)
	s = h.schedule(t, "hourly")
	require.Equal(t, int64(1), s.FiredCount)
	require.Equal(t, jobs[0].ID, s.LastJobID)
	require.Equal(t, t0.Add(time.Hour), *s.LastFireAt)
	require.Equal(t, t0.Add(2*time.Hour), *s.NextFireAt)

	h.at(t, t0.Add(2*time.Hour+2*time.Second)) // late, within the grace: fires
	require.Len(t, h.jobs(t, "reports"), 2)
	require.Equal(t, int64(0), h.schedule(t, "hourly").MissedCount)
}

// stepThrough runs a pass at every step from start to end (inclusive).
func (h *harness) stepThrough(t *testing.T, start, end time.Time, step time.Duration) {
	t.Helper()
	for ts := start; !ts.After(end); ts = ts.Add(step) {
		h.at(t, ts)
	}
}

func TestScheduleEveryAndSeconds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0.5)
	h.putSchedule(t, "every", cronReq("@every 10s", "", "every"))
	h.putSchedule(t, "secs", cronReq("*/20 * * * * *", "", "secs"))
	h.putSchedule(t, "minutely", cronReq("* * * * *", "", "minutely"))
	h.stepThrough(t, t0, t0.Add(time.Minute), time.Second)
	require.Len(t, h.jobs(t, "every"), 6)    // 10s, 20s, ... 60s
	require.Len(t, h.jobs(t, "secs"), 3)     // :20, :40, :00
	require.Len(t, h.jobs(t, "minutely"), 1) // 12:01:00
	var keys []string
	for _, j := range h.jobs(t, "secs") {
		keys = append(keys, j.IdempotencyKey)
	}
	require.Equal(t, []string{
		"spool-schedule:secs:2026-03-01T12:00:20Z",
		"spool-schedule:secs:2026-03-01T12:00:40Z",
		"spool-schedule:secs:2026-03-01T12:01:00Z",
	}, keys)
}

func TestScheduleTimezone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0.5)
	// 12:00 UTC is 13:00 in Paris (CET, UTC+1): the next 09:00 there is
	// tomorrow at 08:00 UTC.
	s := h.putSchedule(t, "paris", cronReq("0 9 * * *", "Europe/Paris", "q"))
	require.Equal(t, time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), *s.NextFireAt)
	// After the change to summer time (March 29), 09:00 is 07:00 UTC.
	h.clock.Set(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	_, err := h.e.PauseSchedule(h.ctx, "paris")
	require.NoError(t, err)
	s, err = h.e.ResumeSchedule(h.ctx, "paris")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 4, 1, 7, 0, 0, 0, time.UTC), *s.NextFireAt)
}

// TestScheduleDST checks daily jobs on the days New York's clocks change,
// against what robfig/cron yields: on the spring-forward day (March 8,
// 2026) 02:30 does not exist and the job does not run that day; on the
// fall-back day (November 1) 02:30 happens once, and 01:30 twice (EDT,
// then EST), so a 01:30 job runs twice.
func TestScheduleDST(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	h := newHarness(t, 0.5)

	h.clock.Set(time.Date(2026, 3, 7, 12, 0, 0, 0, ny))
	h.putSchedule(t, "spring", cronReq("30 2 * * *", "America/New_York", "spring"))
	h.stepThrough(t, time.Date(2026, 3, 8, 0, 0, 0, 0, ny), time.Date(2026, 3, 9, 0, 0, 0, 0, ny), time.Minute)
	require.Empty(t, h.jobs(t, "spring"), "02:30 does not exist on the spring-forward day")
	s := h.schedule(t, "spring")
	require.Equal(t, time.Date(2026, 3, 9, 6, 30, 0, 0, time.UTC), *s.NextFireAt)
	require.Zero(t, s.MissedCount)
	h.at(t, time.Date(2026, 3, 9, 6, 30, 0, 0, time.UTC))
	require.Len(t, h.jobs(t, "spring"), 1)

	h.clock.Set(time.Date(2026, 10, 31, 12, 0, 0, 0, ny))
	h.putSchedule(t, "fall", cronReq("30 2 * * *", "America/New_York", "fall"))
	h.putSchedule(t, "fall-0130", cronReq("30 1 * * *", "America/New_York", "fall-0130"))
	h.stepThrough(t, time.Date(2026, 11, 1, 0, 0, 0, 0, ny), time.Date(2026, 11, 2, 0, 0, 0, 0, ny), time.Minute)
	fall := h.jobs(t, "fall")
	require.Len(t, fall, 1, "02:30 happens once on the fall-back day")
	require.Equal(t, "spool-schedule:fall:2026-11-01T07:30:00Z", fall[0].IdempotencyKey)
	twice := h.jobs(t, "fall-0130")
	require.Len(t, twice, 2, "01:30 happens twice on the fall-back day")
	require.Equal(t, "spool-schedule:fall-0130:2026-11-01T05:30:00Z", twice[0].IdempotencyKey)
	require.Equal(t, "spool-schedule:fall-0130:2026-11-01T06:30:00Z", twice[1].IdempotencyKey)
}

// reopenable is an engine on an embedded store that can be stopped and
// opened again on the same directory: a restart.
type reopenable struct {
	dir   string
	clock *engine.ManualClock
	e     *engine.Engine
	close func()
}

func (r *reopenable) open(t *testing.T) {
	t.Helper()
	st, err := embedded.Open(r.dir, embedded.Options{})
	require.NoError(t, err)
	e, err := engine.New(engine.Config{Store: st, Clock: r.clock})
	require.NoError(t, err)
	r.e = e
	r.close = func() { e.Stop(); require.NoError(t, st.Close()) }
}

func TestScheduleMissedWhileDown(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{spool.MissedSkip, spool.MissedOnce} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := &reopenable{dir: t.TempDir(), clock: engine.NewManualClock(t0)}
			r.open(t)
			req := cronReq("* * * * *", "", "q")
			req.Missed = policy
			_, _, err := r.e.PutSchedule(ctx, "minutely", req)
			require.NoError(t, err)
			r.clock.Set(t0.Add(time.Minute))
			require.NoError(t, r.e.RunSchedules(ctx))
			r.close()

			// Down from 12:01:30 to 12:10:30: 12:02 ... 12:10 are missed.
			r.clock.Set(t0.Add(10*time.Minute + 30*time.Second))
			r.open(t)
			defer r.close()
			require.NoError(t, r.e.RunSchedules(ctx))
			s, err := r.e.GetSchedule(ctx, "minutely")
			require.NoError(t, err)
			l, err := r.e.ListJobs(ctx, engine.ListParams{Queue: "q", Limit: 100})
			require.NoError(t, err)
			require.Equal(t, t0.Add(11*time.Minute), *s.NextFireAt)
			require.Equal(t, spool.MissedServerDown, s.LastMissedReason)
			switch policy {
			case spool.MissedSkip:
				require.Len(t, l.Jobs, 1)
				require.Equal(t, int64(1), s.FiredCount)
				require.Equal(t, int64(9), s.MissedCount)
				require.Equal(t, t0.Add(10*time.Minute), *s.LastMissedAt)
			case spool.MissedOnce:
				require.Len(t, l.Jobs, 2)
				require.Equal(t, "spool-schedule:minutely:2026-03-01T12:10:00Z", l.Jobs[1].IdempotencyKey)
				require.Equal(t, int64(2), s.FiredCount)
				require.Equal(t, int64(8), s.MissedCount)
				require.Equal(t, t0.Add(9*time.Minute), *s.LastMissedAt)
				require.Equal(t, t0.Add(10*time.Minute), *s.LastFireAt)
			}
			// And on it goes.
			r.clock.Set(t0.Add(11 * time.Minute))
			require.NoError(t, r.e.RunSchedules(ctx))
			l2, err := r.e.ListJobs(ctx, engine.ListParams{Queue: "q", Limit: 100})
			require.NoError(t, err)
			require.Len(t, l2.Jobs, len(l.Jobs)+1)
		})
	}
}

func TestScheduleFullQueueIsMissed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0.5)
	_, err := h.e.PatchQueue(h.ctx, "tiny", spool.QueueConfig{MaxDepth: ptr(int64(1))})
	require.NoError(t, err)
	h.enqueue(t, "tiny", spool.EnqueueRequest{Type: "x"})
	h.putSchedule(t, "s", cronReq("* * * * *", "", "tiny"))
	h.at(t, t0.Add(time.Minute))
	require.Len(t, h.jobs(t, "tiny"), 1)
	s := h.schedule(t, "s")
	require.Equal(t, int64(1), s.MissedCount)
	require.Equal(t, int64(0), s.FiredCount)
	require.Equal(t, spool.MissedQueueFull, s.LastMissedReason)
	require.Equal(t, t0.Add(time.Minute), *s.LastMissedAt)
	require.Equal(t, t0.Add(2*time.Minute), *s.NextFireAt, "not retried")
	h.at(t, t0.Add(time.Minute+30*time.Second))
	require.Equal(t, int64(1), h.schedule(t, "s").MissedCount)
}

func TestSchedulePauseResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0.5)
	h.putSchedule(t, "s", cronReq("* * * * *", "", "q"))
	s, err := h.e.PauseSchedule(h.ctx, "s")
	require.NoError(t, err)
	require.True(t, s.Paused)
	require.Nil(t, s.NextFireAt)
	h.stepThrough(t, t0, t0.Add(5*time.Minute), 30*time.Second)
	require.Empty(t, h.jobs(t, "q"))
	h.clock.Set(t0.Add(5*time.Minute + 10*time.Second))
	s, err = h.e.ResumeSchedule(h.ctx, "s")
	require.NoError(t, err)
	require.False(t, s.Paused)
	require.Equal(t, t0.Add(6*time.Minute), *s.NextFireAt, "no backlog")
	h.at(t, t0.Add(6*time.Minute))
	require.Len(t, h.jobs(t, "q"), 1)
	require.Zero(t, h.schedule(t, "s").MissedCount)

	// A PUT that keeps the expression keeps the next firing and the counts.
	req := cronReq("* * * * *", "", "q")
	req.Job.Type = "other"
	s = h.putSchedule(t, "s", req)
	require.Equal(t, t0.Add(7*time.Minute), *s.NextFireAt)
	require.Equal(t, int64(1), s.FiredCount)
}

func TestScheduleTwoEnginesFireOnce(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	clock := engine.NewManualClock(t0)
	var es []*engine.Engine
	for range 3 {
		e, err := engine.New(engine.Config{Store: st, Clock: clock})
		require.NoError(t, err)
		es = append(es, e)
	}
	ctx := context.Background()
	_, _, err = es[0].PutSchedule(ctx, "s", cronReq("@every 1s", "", "q"))
	require.NoError(t, err)
	for i := 1; i <= 30; i++ {
		clock.Set(t0.Add(time.Duration(i) * time.Second))
		var wg sync.WaitGroup
		for _, e := range es {
			wg.Go(func() { require.NoError(t, e.RunSchedules(ctx)) })
		}
		wg.Wait()
	}
	l, err := es[1].ListJobs(ctx, engine.ListParams{Queue: "q", Limit: 100})
	require.NoError(t, err)
	require.Len(t, l.Jobs, 30)
	seen := map[string]bool{}
	for _, j := range l.Jobs {
		require.False(t, seen[j.IdempotencyKey])
		seen[j.IdempotencyKey] = true
	}
}

func TestScheduleRefusesBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0.5)
	for name, req := range map[string]spool.ScheduleRequest{
		"bad expression":     cronReq("* * *", "", "q"),
		"bad field":          cronReq("61 * * * *", "", "q"),
		"unknown timezone":   cronReq("* * * * *", "Mars/Olympus", "q"),
		"local timezone":     cronReq("* * * * *", "Local", "q"),
		"timezone in cron":   cronReq("CRON_TZ=UTC * * * * *", "", "q"),
		"never fires":        cronReq("0 0 30 2 *", "", "q"),
		"internal queue":     cronReq("* * * * *", "", "_webhooks"),
		"bad queue name":     cronReq("* * * * *", "", "Bad Queue"),
		"bad every":          cronReq("@every banana", "", "q"),
		"unknown descriptor": cronReq("@fortnightly", "", "q"),
	} {
		_, _, err := h.e.PutSchedule(h.ctx, "s", req)
		require.ErrorIs(t, err, spool.ErrInvalid, name)
	}
	_, _, err := h.e.PutSchedule(h.ctx, "Bad Name", cronReq("* * * * *", "", "q"))
	require.ErrorIs(t, err, spool.ErrInvalid)
	all, err := h.e.Schedules(h.ctx)
	require.NoError(t, err)
	require.Empty(t, all)
	_, err = h.e.GetSchedule(h.ctx, "s")
	require.ErrorIs(t, err, spool.ErrNotFound)
	require.ErrorIs(t, h.e.DeleteSchedule(h.ctx, "s"), spool.ErrNotFound)
	_, err = h.e.PauseSchedule(h.ctx, "s")
	require.ErrorIs(t, err, spool.ErrNotFound)
}

func TestScheduleLoopFires(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	e, err := engine.New(engine.Config{Store: st})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, e.Start(ctx))
	defer func() { e.Stop(); require.NoError(t, st.Close()) }()
	_, _, err = e.PutSchedule(ctx, "s", cronReq("@every 1s", "", "q"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := e.GetSchedule(ctx, "s")
		return err == nil && s.FiredCount >= 2
	}, 10*time.Second, 20*time.Millisecond)
}
