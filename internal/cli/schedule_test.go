package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestScheduleCommands(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	ctx := context.Background()

	r := runCLI(t, url, "", "schedule", "set", "nightly", "--cron", "30 2 * * *", "--tz", "America/New_York",
		"--queue", "reports", "--type", "report.build", "--payload", `{"kind":"daily"}`, "--missed", "once",
		"--priority", "4", "--tag", "cron")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "schedule nightly: 30 2 * * * (America/New_York)")
	sc, err := c.Schedule(ctx, "nightly")
	require.NoError(t, err)
	require.Equal(t, spool.MissedOnce, sc.Missed)
	require.Equal(t, 4, sc.Job.Priority)
	require.Equal(t, []string{"cron"}, sc.Job.Tags)
	require.JSONEq(t, `{"kind":"daily"}`, string(sc.Job.Payload))

	r = runCLI(t, url, "", "schedule", "set", "ping", "--cron", "@every 10s", "--queue", "ops", "--type", "ping")
	require.NoError(t, r.err, r.stderr)

	r = runCLI(t, url, "", "schedule", "ls")
	require.NoError(t, r.err, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^nightly\s+30 2 \* \* \*\s+America/New_York\s+reports\s+report.build\s+\S+\s+0\s+0\s+-$`, lines[1])
	require.Regexp(t, `^ping\s+@every 10s\s+UTC\s+ops\s+ping`, lines[2])

	r = runCLI(t, url, "", "schedule", "pause", "nightly")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "paused; next none (paused)")
	r = runCLI(t, url, "", "schedule", "resume", "nightly")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "resumed")

	r = runCLI(t, url, "", "schedule", "ls", "--json")
	require.NoError(t, r.err, r.stderr)
	var out spool.SchedulesResponse
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Len(t, out.Schedules, 2)
	require.False(t, out.Schedules[0].Paused)

	// The server's refusal: exit status 1, its message.
	r = runCLI(t, url, "", "schedule", "set", "bad", "--cron", "61 * * * *", "--queue", "q", "--type", "t")
	require.Equal(t, 1, exitCode(r.err))
	require.ErrorContains(t, r.err, "not a valid expression")
	r = runCLI(t, url, "", "schedule", "set", "bad", "--cron", "@daily", "--tz", "Nowhere/City", "--queue", "q", "--type", "t")
	require.ErrorContains(t, r.err, "unknown timezone")

	// Command-line mistakes: exit status 2, nothing sent.
	for _, args := range [][]string{
		{"schedule", "set", "x", "--queue", "q", "--type", "t"},
		{"schedule", "set", "x", "--cron", "@daily", "--type", "t"},
		{"schedule", "set", "x", "--cron", "@daily", "--queue", "q"},
		{"schedule", "set", "Bad", "--cron", "@daily", "--queue", "q", "--type", "t"},
		{"schedule", "set", "x", "--cron", "@daily", "--queue", "_internal", "--type", "t"},
		{"schedule", "set", "x", "--cron", "@daily", "--queue", "q", "--type", "t", "--missed", "all"},
		{"schedule", "set", "x", "--cron", "@daily", "--queue", "q", "--type", "t", "--payload", "{"},
		{"schedule", "rm"},
	} {
		r = runCLI(t, url, "", args...)
		require.Equal(t, 2, exitCode(r.err), "%v: %v", args, r.err)
	}
	all, err := c.Schedules(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)

	r = runCLI(t, url, "", "schedule", "rm", "nightly")
	require.NoError(t, r.err, r.stderr)
	r = runCLI(t, url, "", "schedule", "rm", "nightly")
	require.Equal(t, 1, exitCode(r.err))
}
