package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestTopicCommands(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	ctx := context.Background()

	r := runCLI(t, url, "", "topic", "publish", "tweets", "tweet.created", `{"id":1}`)
	require.ErrorContains(t, r.err, "no subscriptions")
	require.Equal(t, 1, exitCode(r.err))

	r = runCLI(t, url, "", "topic", "sub", "tweets", "timeline")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "all types")
	r = runCLI(t, url, "", "topic", "sub", "tweets", "followers", "--type", "tweet.created")
	require.NoError(t, r.err, r.stderr)

	r = runCLI(t, url, "", "topic", "ls")
	require.NoError(t, r.err, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^tweets\s+followers\s+tweet.created$`, lines[1])
	require.Regexp(t, `^tweets\s+timeline\s+all types$`, lines[2])

	r = runCLI(t, url, "", "topic", "publish", "tweets", "tweet.created", `{"id":1}`, "--priority", "3")
	require.NoError(t, r.err, r.stderr)
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2)
	require.True(t, strings.HasPrefix(lines[0], "followers\t"))
	job, err := c.Get(ctx, strings.Split(lines[0], "\t")[1], 0)
	require.NoError(t, err)
	require.Equal(t, 3, job.Priority)
	require.JSONEq(t, `{"id":1}`, string(job.Payload))

	r = runCLI(t, url, "", "topic", "publish", "tweets", "tweet.deleted", "--json")
	require.NoError(t, r.err, r.stderr)
	var out spool.JobsResponse
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Len(t, out.Jobs, 1)
	require.Equal(t, "timeline", out.Jobs[0].Queue)

	r = runCLI(t, url, "", "topic", "unsub", "tweets", "followers")
	require.NoError(t, r.err, r.stderr)
	r = runCLI(t, url, "", "topic", "unsub", "tweets", "followers")
	require.Error(t, r.err)

	r = runCLI(t, url, "", "topic", "sub", "Bad", "q")
	require.Equal(t, 2, exitCode(r.err))
}
