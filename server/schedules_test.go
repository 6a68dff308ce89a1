package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
	"github.com/spoolq/spool/internal/servertest"
	"github.com/spoolq/spool/server"
)

func TestSchedulesCRUDAndFiring(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	clock := engine.NewManualClock(t0)
	ts := newTestServer(t, func(c *server.Config) { c.Clock = clock })

	var list spool.SchedulesResponse
	ts.do("GET", "/v1/schedules", nil).ok(t, http.StatusOK, &list)
	require.NotNil(t, list.Schedules)
	require.Empty(t, list.Schedules)

	body := `{"cron":"*/30 * * * * *","timezone":"Europe/Berlin","missed":"once",
		"job":{"queue":"reports","type":"report.build","payload":{"kind":"daily"},"priority":5,"tags":["cron"]}}`
	var sc spool.Schedule
	r := ts.do("PUT", "/v1/schedules/nightly", body)
	r.ok(t, http.StatusCreated, &sc)
	require.Equal(t, "/v1/schedules/nightly", r.h.Get("Location"))
	require.Equal(t, "nightly", sc.Name)
	require.Equal(t, "Europe/Berlin", sc.Timezone)
	require.Equal(t, spool.MissedOnce, sc.Missed)
	require.Equal(t, "reports", sc.Job.Queue)
	require.Equal(t, 5, sc.Job.Priority)
	require.Equal(t, t0.Add(30*time.Second), *sc.NextFireAt)

	// PUT again: replaced, 200.
	ts.do("PUT", "/v1/schedules/nightly", body).ok(t, http.StatusOK, &sc)

	clock.Set(t0.Add(30 * time.Second))
	require.NoError(t, servertest.Engine(ts.s).RunSchedules(context.Background()))
	ts.do("GET", "/v1/schedules/nightly", nil).ok(t, http.StatusOK, &sc)
	require.Equal(t, int64(1), sc.FiredCount)
	require.NotEmpty(t, sc.LastJobID)
	require.Equal(t, t0.Add(30*time.Second), *sc.LastFireAt)
	require.Equal(t, t0.Add(time.Minute), *sc.NextFireAt)
	var job spool.Job
	ts.do("GET", "/v1/jobs/"+sc.LastJobID, nil).ok(t, http.StatusOK, &job)
	require.Equal(t, "report.build", job.Type)
	require.Equal(t, 5, job.Priority)
	require.JSONEq(t, `{"kind":"daily"}`, string(job.Payload))
	require.Equal(t, []string{"cron"}, job.Tags)

	var paused spool.Schedule
	ts.do("POST", "/v1/schedules/nightly/pause", nil).ok(t, http.StatusOK, &paused)
	require.True(t, paused.Paused)
	require.Nil(t, paused.NextFireAt)
	clock.Set(t0.Add(5 * time.Minute))
	require.NoError(t, servertest.Engine(ts.s).RunSchedules(context.Background()))
	ts.do("POST", "/v1/schedules/nightly/resume", nil).ok(t, http.StatusOK, &sc)
	require.False(t, sc.Paused)
	require.Equal(t, t0.Add(5*time.Minute+30*time.Second), *sc.NextFireAt)
	require.Equal(t, int64(1), sc.FiredCount)
	require.Zero(t, sc.MissedCount)

	ts.do("GET", "/v1/schedules", nil).ok(t, http.StatusOK, &list)
	require.Len(t, list.Schedules, 1)

	var del spool.ScheduleDeleted
	ts.do("DELETE", "/v1/schedules/nightly", nil).ok(t, http.StatusOK, &del)
	require.True(t, del.Deleted)
	ts.do("DELETE", "/v1/schedules/nightly", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	ts.do("GET", "/v1/schedules/nightly", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	ts.do("POST", "/v1/schedules/nightly/pause", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	ts.do("POST", "/v1/schedules/nightly/resume", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
	// The job it enqueued stays.
	ts.do("GET", "/v1/jobs/"+job.ID, nil).ok(t, http.StatusOK, nil)
}

// Bad input is refused with 400 and a message naming the problem, and
// changes nothing: an existing schedule stays as it was.
func TestSchedulesBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	good := `{"cron":"@hourly","job":{"queue":"q","type":"t"}}`
	var before spool.Schedule
	ts.do("PUT", "/v1/schedules/s", good).ok(t, http.StatusCreated, &before)

	for _, tc := range []struct {
		name, path, body, want string
	}{
		{"bad expression", "/v1/schedules/s", `{"cron":"* * *","job":{"queue":"q","type":"t"}}`, "not a valid expression"},
		{"bad minute", "/v1/schedules/s", `{"cron":"99 * * * *","job":{"queue":"q","type":"t"}}`, "not a valid expression"},
		{"never fires", "/v1/schedules/s", `{"cron":"0 0 31 2 *","job":{"queue":"q","type":"t"}}`, "never fires"},
		{"unknown timezone", "/v1/schedules/s", `{"cron":"@daily","timezone":"Europe/Atlantis","job":{"queue":"q","type":"t"}}`, "unknown timezone"},
		{"bad missed", "/v1/schedules/s", `{"cron":"@daily","missed":"all","job":{"queue":"q","type":"t"}}`, "missed must be"},
		{"no cron", "/v1/schedules/s", `{"job":{"queue":"q","type":"t"}}`, "cron is required"},
		{"no queue", "/v1/schedules/s", `{"cron":"@daily","job":{"type":"t"}}`, "job.queue is required"},
		{"internal queue", "/v1/schedules/s", `{"cron":"@daily","job":{"queue":"_webhooks","type":"t"}}`, "reserved"},
		{"no type", "/v1/schedules/s", `{"cron":"@daily","job":{"queue":"q"}}`, "job.type is required"},
		{"bad payload", "/v1/schedules/s", `{"cron":"@daily","job":{"queue":"q","type":"t","priority":5000}}`, "priority"},
		{"run_at", "/v1/schedules/s", `{"cron":"@daily","job":{"queue":"q","type":"t","run_at":"2030-01-01T00:00:00Z"}}`, "run_at"},
		{"idempotency key", "/v1/schedules/s", `{"cron":"@daily","job":{"queue":"q","type":"t","idempotency_key":"k"}}`, "idempotency_key"},
		{"callback without secret", "/v1/schedules/s", `{"cron":"@daily","job":{"queue":"q","type":"t","callback_url":"https://example.com/x"}}`, "callback_url"},
		{"unknown field", "/v1/schedules/s", `{"cron":"@daily","every":"1h","job":{"queue":"q","type":"t"}}`, "every"},
		{"unknown job field", "/v1/schedules/s", `{"cron":"@daily","job":{"queue":"q","type":"t","colour":1}}`, "colour"},
		{"not json", "/v1/schedules/s", `{"cron":`, "malformed"},
		{"bad name", "/v1/schedules/Bad%20Name", good, "schedule name"},
		{"reserved name", "/v1/schedules/_s", good, "schedule name"},
	} {
		f := ts.do("PUT", tc.path, tc.body).fails(t, http.StatusBadRequest, spool.CodeInvalid)
		require.Contains(t, f.Message, tc.want, tc.name)
	}
	ts.do("GET", "/v1/schedules/Bad%20Name", nil).fails(t, http.StatusBadRequest, spool.CodeInvalid)
	ts.do("POST", "/v1/schedules/s/pause", `{"x":1}`).fails(t, http.StatusBadRequest, spool.CodeInvalid)

	var after spool.Schedule
	ts.do("GET", "/v1/schedules/s", nil).ok(t, http.StatusOK, &after)
	require.Equal(t, before, after)
	var list spool.SchedulesResponse
	ts.do("GET", "/v1/schedules", nil).ok(t, http.StatusOK, &list)
	require.Len(t, list.Schedules, 1)
	require.True(t, strings.HasPrefix(list.Schedules[0].Cron, "@hourly"))
}

// POST /v1/schedules/{name}/run enqueues the schedule's job now and leaves
// its next firing and counters alone; an unknown schedule is 404.
func TestScheduleRunNow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	ts := newTestServer(t, func(c *server.Config) { c.Clock = engine.NewManualClock(t0) })
	var sc spool.Schedule
	ts.do("PUT", "/v1/schedules/hourly", `{"cron":"@hourly","job":{"queue":"reports","type":"report.build","payload":{"k":1}}}`).
		ok(t, http.StatusCreated, &sc)
	var j spool.Job
	r := ts.do("POST", "/v1/schedules/hourly/run", nil)
	r.ok(t, http.StatusAccepted, &j)
	require.Equal(t, "/v1/jobs/"+j.ID, r.h.Get("Location"))
	require.Equal(t, "reports", j.Queue)
	require.Equal(t, "report.build", j.Type)
	require.JSONEq(t, `{"k":1}`, string(j.Payload))
	var again spool.Job
	ts.do("POST", "/v1/schedules/hourly/run", nil).ok(t, http.StatusAccepted, &again)
	require.NotEqual(t, j.ID, again.ID, "each run makes a job")
	var after spool.Schedule
	ts.do("GET", "/v1/schedules/hourly", nil).ok(t, http.StatusOK, &after)
	require.Equal(t, sc.NextFireAt, after.NextFireAt)
	require.Zero(t, after.FiredCount)
	require.EqualValues(t, 2, ts.queue("reports").Counts[spool.StateReady])
	ts.do("POST", "/v1/schedules/nope/run", nil).fails(t, http.StatusNotFound, spool.CodeNotFound)
}
