package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// kill fails a job for good through the low-level worker calls.
func kill(t *testing.T, c *client.Client, queue, msg string) string {
	t.Helper()
	ctx := context.Background()
	jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{queue}})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	_, err = c.Fail(ctx, jobs[0].ID, spool.FailRequest{Token: jobs[0].Lease.Token, Error: msg, Final: true})
	require.NoError(t, err)
	return jobs[0].ID
}

func TestWait(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	ctx := context.Background()
	job, err := c.Push(ctx, "q", "t", nil)
	require.NoError(t, err)

	done := make(chan result, 1)
	go func() { done <- runCLI(t, url, "", "wait", job.ID, "--json") }()
	jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"q"}})
	require.NoError(t, err)
	_, err = c.Complete(ctx, job.ID, spool.CompleteRequest{Token: jobs[0].Lease.Token, Result: json.RawMessage(`{"pages":3}`)})
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err, r.stderr)
	var got spool.Job
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, spool.StateSucceeded, got.State)
	require.JSONEq(t, `{"pages":3}`, string(got.Result))

	// A dead job: shown, and the exit status says it failed.
	_, err = c.Push(ctx, "q", "t", nil)
	require.NoError(t, err)
	dead := kill(t, c, "q", "disk full\nstack...")
	r = runCLI(t, url, "", "wait", dead)
	require.ErrorContains(t, r.err, "job "+dead+" is dead after 1 attempt(s): disk full")
	require.Equal(t, 1, exitCode(r.err))
	require.Contains(t, r.stdout, "state:")
	require.Contains(t, r.stdout, "dead")

	// --timeout gives up.
	later, err := c.Push(ctx, "q", "t", nil, client.Delay(time.Hour))
	require.NoError(t, err)
	r = runCLI(t, url, "", "wait", later.ID, "--timeout", "200ms")
	require.ErrorContains(t, r.err, "is still scheduled after 200ms")
	require.Equal(t, 1, exitCode(r.err))

	r = runCLI(t, url, "", "wait", "0190a7e4-8c1e-7c3a-9d52-5b1f0e2a9c11")
	require.ErrorIs(t, r.err, spool.ErrNotFound)
	r = runCLI(t, url, "", "wait")
	require.Equal(t, 2, exitCode(r.err))
}

func TestJobsPagesAndJSON(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 5; i++ {
		j, err := c.Push(ctx, "list", fmt.Sprintf("type-%d", i), nil)
		require.NoError(t, err)
		ids = append(ids, j.ID)
	}
	_, err := c.Push(ctx, "list", "later", nil, client.Delay(time.Hour))
	require.NoError(t, err)

	r := runCLI(t, url, "", "jobs", "list", "--state", "ready", "--limit", "2")
	require.NoError(t, r.err, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 3, r.stdout)
	require.Equal(t, []string{"ID", "TYPE", "STATE", "ATTEMPTS", "CREATED", "LAST", "ERROR"}, strings.Fields(lines[0]))
	require.Equal(t, []string{ids[0], "type-0", "ready", "0/25"}, strings.Fields(lines[1])[:4])
	require.Equal(t, ids[1], strings.Fields(lines[2])[0])
	require.Contains(t, r.stderr, "more: spool jobs list --state ready --limit 2 --cursor "+ids[1])

	// The next page, from the cursor.
	r = runCLI(t, url, "", "jobs", "list", "--state", "ready", "--limit", "2", "--cursor", ids[1])
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, ids[2])
	require.Contains(t, r.stdout, ids[3])
	require.NotContains(t, r.stdout, ids[1])

	// --all follows every page.
	r = runCLI(t, url, "", "jobs", "list", "--state", "ready", "--limit", "2", "--all", "--json")
	require.NoError(t, r.err)
	require.Empty(t, r.stderr)
	var all spool.JobList
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &all))
	require.Len(t, all.Jobs, 5)
	require.Empty(t, all.NextCursor)
	for i, j := range all.Jobs {
		require.Equal(t, ids[i], j.ID)
	}

	// No state: every job.
	r = runCLI(t, url, "", "jobs", "list", "--json")
	require.NoError(t, r.err)
	var page spool.JobList
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &page))
	require.Len(t, page.Jobs, 6)

	r = runCLI(t, url, "", "jobs", "empty-queue")
	require.NoError(t, r.err)
	require.Equal(t, "no jobs\n", r.stdout)

	for _, bad := range [][]string{
		{"jobs", "list", "--state", "finished"},
		{"jobs", "list", "--limit", "0"},
		{"jobs", "Bad Queue"},
		{"jobs"},
	} {
		r := runCLI(t, url, "", bad...)
		require.Error(t, r.err, "%v", bad)
		require.Equal(t, 2, exitCode(r.err), "%v", bad)
	}
}

func TestDeadAndRetryAllDead(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	ctx := context.Background()
	var dead []string
	for i := 0; i < 3; i++ {
		_, err := c.Push(ctx, "mail", "send", nil)
		require.NoError(t, err)
		dead = append(dead, kill(t, c, "mail", fmt.Sprintf("smtp error %d\n\tat line 7", i)))
	}
	alive, err := c.Push(ctx, "mail", "send", nil)
	require.NoError(t, err)

	r := runCLI(t, url, "", "dead", "mail")
	require.NoError(t, r.err, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4, r.stdout)
	require.Equal(t, []string{"ID", "TYPE", "ATTEMPTS", "DIED", "LAST", "ERROR"}, strings.Fields(lines[0]))
	for i, id := range dead {
		require.True(t, strings.HasPrefix(lines[i+1], id), lines[i+1])
		require.Contains(t, lines[i+1], fmt.Sprintf("smtp error %d ...", i), "the first line of the last error")
	}

	r = runCLI(t, url, "", "dead", "mail", "--json")
	require.NoError(t, r.err)
	var page spool.JobList
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &page))
	require.Len(t, page.Jobs, 3)

	r = runCLI(t, url, "", "retry", "--all-dead", "mail")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "retried 3 dead job(s) of mail\n", r.stdout)
	for _, id := range dead {
		j, err := c.Get(ctx, id, 0)
		require.NoError(t, err)
		require.Equal(t, spool.StateReady, j.State)
		require.Len(t, j.Errors, 1, "past errors are kept")
	}
	j, err := c.Get(ctx, alive.ID, 0)
	require.NoError(t, err)
	require.Equal(t, spool.StateReady, j.State)

	r = runCLI(t, url, "", "dead", "mail")
	require.NoError(t, r.err)
	require.Equal(t, "no dead jobs\n", r.stdout)
	r = runCLI(t, url, "", "retry", "--all-dead", "mail")
	require.NoError(t, r.err)
	require.Equal(t, "no dead jobs in mail\n", r.stdout)

	// One job by id still works; --all-dead wants a queue name.
	_, err = c.Push(ctx, "other", "t", nil)
	require.NoError(t, err)
	one := kill(t, c, "other", "x")
	r = runCLI(t, url, "", "retry", one)
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, "ready")
	r = runCLI(t, url, "", "retry", "--all-dead", "Not A Queue")
	require.Equal(t, 2, exitCode(r.err))
}

func TestCancelByID(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	job, err := c.Push(context.Background(), "q", "t", nil)
	require.NoError(t, err)
	r := runCLI(t, url, "", "cancel", job.ID, "--json")
	require.NoError(t, r.err)
	var got spool.Job
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, spool.StateCancelled, got.State)
}
