package cli

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

func TestQueueBulkCommands(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	ctx := context.Background()
	var dead []string
	for i := range 4 {
		typ := "a"
		if i%2 == 1 {
			typ = "b"
		}
		_, err := c.Push(ctx, "q", typ, nil, client.Tags("x"))
		require.NoError(t, err)
		dead = append(dead, kill(t, c, "q", "boom"))
	}

	r := runCLI(t, url, "", "jobs", "q", "--type", "a", "--json")
	require.NoError(t, r.err, r.stderr)
	var page spool.JobList
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &page))
	require.Len(t, page.Jobs, 2)
	for _, j := range page.Jobs {
		require.Equal(t, "a", j.Type)
	}

	r = runCLI(t, url, "", "queue", "retry", "q", "--type", "b", "--dry-run")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "would retry 2 job(s) of q\n", r.stdout)
	r = runCLI(t, url, "", "queue", "retry", "q", "--type", "b")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "retried 2 job(s) of q\n", r.stdout)

	r = runCLI(t, url, "", "queue", "purge", "q", "--state", "dead", "--json")
	require.NoError(t, r.err, r.stderr)
	require.JSONEq(t, `{"count":2}`, r.stdout)
	_, err := c.Get(ctx, dead[0], 0)
	require.ErrorIs(t, err, spool.ErrNotFound)

	r = runCLI(t, url, "", "queue", "drain", "q")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "cancelled 2 job(s) of q\n", r.stdout)
	q, err := c.Queue(ctx, "q")
	require.NoError(t, err)
	require.EqualValues(t, 2, q.Counts[spool.StateCancelled])

	// One job by id.
	r = runCLI(t, url, "", "delete", dead[1])
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "deleted "+dead[1]+"\n", r.stdout)
	r = runCLI(t, url, "", "delete", dead[1])
	require.Error(t, r.err)
	require.Equal(t, 1, exitCode(r.err))

	r = runCLI(t, url, "", "queue", "rm", "q")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "deleted queue q and 1 job(s)\n", r.stdout)
	_, err = c.Queue(ctx, "q")
	require.ErrorIs(t, err, spool.ErrNotFound)

	// Malformed arguments are usage errors, sent nowhere.
	for _, args := range [][]string{
		{"queue", "purge", "q", "--state", "nope"},
		{"queue", "retry", "Bad Name"},
		{"queue", "drain"},
		{"queue", "rm", "a", "b"},
		{"delete"},
	} {
		r = runCLI(t, url, "", args...)
		require.Equal(t, 2, exitCode(r.err), "%v: %v", args, r.err)
	}
}
