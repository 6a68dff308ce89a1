package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestQueueSetPauseResume(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)

	r := runCLI(t, url, "", "queue", "set", "reports", "--concurrency", "3", "--rate", "2.5", "--burst", "5", "--max-depth", "100")
	require.NoError(t, r.err)
	for _, want := range []string{"reports", "concurrency", "3", "2.5/s, burst 5", "max depth", "100", "paused", "no"} {
		require.Contains(t, r.stdout, want)
	}
	q, err := c.Queue(t.Context(), "reports")
	require.NoError(t, err)
	require.Equal(t, 3, *q.Config.Concurrency)
	require.Equal(t, 2.5, *q.Config.Rate)
	require.Equal(t, 5, *q.Config.Burst)
	require.EqualValues(t, 100, *q.Config.MaxDepth)

	r = runCLI(t, url, "", "queue", "set", "reports", "--rate", "0", "--json")
	require.NoError(t, r.err)
	var info spool.QueueInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info))
	require.Equal(t, 0.0, *info.Config.Rate, "0 removes the limit")
	require.Equal(t, 3, *info.Config.Concurrency, "flags not given stay")

	r = runCLI(t, url, "", "queue", "pause", "reports")
	require.NoError(t, r.err)
	require.Regexp(t, `paused\s+yes`, r.stdout)
	q, err = c.Queue(t.Context(), "reports")
	require.NoError(t, err)
	require.True(t, *q.Config.Paused)

	r = runCLI(t, url, "", "queue", "resume", "reports")
	require.NoError(t, r.err)
	require.Regexp(t, `paused\s+no`, r.stdout)

	r = runCLI(t, url, "", "queue", "show", "reports")
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, "no limit", "rate")
}

func TestQueueSetRefusesBadInput(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	for _, args := range [][]string{
		{"queue", "set", "q"},
		{"queue", "set", "q", "--concurrency", "-1"},
		{"queue", "set", "q", "--rate", "fast"},
		{"queue", "set", "q", "--burst", "-3"},
		{"queue", "set", "q", "--retention", "soon"},
		{"queue", "set", "Bad Name", "--concurrency", "1"},
		{"queue", "pause"},
		{"queue", "resume", "a", "b"},
	} {
		r := runCLI(t, url, "", args...)
		var ue *UsageError
		require.ErrorAs(t, r.err, &ue, "%v", args)
	}
	qs, err := c.Queues(t.Context())
	require.NoError(t, err)
	require.Empty(t, qs, "nothing was created")
}
