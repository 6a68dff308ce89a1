package client_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestSchedules(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx := context.Background()

	all, err := c.Schedules(ctx)
	require.NoError(t, err)
	require.Empty(t, all)

	req := spool.ScheduleRequest{Cron: "0 3 * * *", Timezone: "America/New_York", Job: spool.ScheduleJob{
		Queue: "reports", EnqueueRequest: spool.EnqueueRequest{Type: "report.build", Payload: []byte(`{"kind":"daily"}`)}}}
	sc, err := c.PutSchedule(ctx, "nightly", req)
	require.NoError(t, err)
	require.Equal(t, "nightly", sc.Name)
	require.NotNil(t, sc.NextFireAt)

	_, err = c.PutSchedule(ctx, "broken", spool.ScheduleRequest{Cron: "every day", Job: req.Job})
	require.ErrorIs(t, err, spool.ErrInvalid)

	sc, err = c.PauseSchedule(ctx, "nightly")
	require.NoError(t, err)
	require.True(t, sc.Paused)
	sc, err = c.ResumeSchedule(ctx, "nightly")
	require.NoError(t, err)
	require.False(t, sc.Paused)
	sc, err = c.Schedule(ctx, "nightly")
	require.NoError(t, err)
	require.Equal(t, "report.build", sc.Job.Type)

	all, err = c.Schedules(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.NoError(t, c.DeleteSchedule(ctx, "nightly"))
	require.ErrorIs(t, c.DeleteSchedule(ctx, "nightly"), spool.ErrNotFound)
	_, err = c.Schedule(ctx, "nightly")
	require.ErrorIs(t, err, spool.ErrNotFound)
}
