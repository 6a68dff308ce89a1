package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

// failingReader fails the test's expectation if anything reads it.
type failingReader struct{ read bool }

func (f *failingReader) Read([]byte) (int, error) {
	f.read = true
	return 0, errors.New("stdin must not be read")
}

// A push without a payload never touches stdin (a 'while read' loop keeps
// its input; an open pipe does not block it).
func TestPushLeavesStdinAlone(t *testing.T) {
	t.Parallel()
	url, _ := newServer(t)
	stdin := &failingReader{}
	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"push", "q", "t", "--json"}, env{stdin: stdin, stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return map[string]string{EnvServer: url}[k] }})
	require.NoError(t, err, errOut.String())
	require.False(t, stdin.read)
	var job spool.Job
	require.NoError(t, json.Unmarshal([]byte(out.String()), &job))
	require.Empty(t, job.Payload)
}

func TestPushBackoffAndQueueSetBackoff(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	r := runCLI(t, url, "", "push", "q", "t", "--backoff", "10s", "--backoff-max", "2m", "--json")
	require.NoError(t, r.err, r.stderr)
	var job spool.Job
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &job))
	require.Equal(t, &spool.Backoff{Base: spool.Duration(10 * time.Second), Max: spool.Duration(2 * time.Minute)}, job.Backoff)

	// A callback URL travels too; this server has no webhook secret, so it
	// refuses it (nothing is enqueued).
	r = runCLI(t, url, "", "push", "q", "t", "--callback-url", "https://example.com/hook")
	require.ErrorContains(t, r.err, "callback_url")
	require.Equal(t, 1, exitCode(r.err))

	r = runCLI(t, url, "", "queue", "set", "q", "--backoff", "3s", "--backoff-max", "30s")
	require.NoError(t, r.err, r.stderr)
	q, err := c.Queue(context.Background(), "q")
	require.NoError(t, err)
	require.Equal(t, spool.Backoff{Base: spool.Duration(3 * time.Second), Max: spool.Duration(30 * time.Second)}, *q.Config.Backoff)
	r = runCLI(t, url, "", "queue", "set", "q", "--backoff", "0s")
	require.Equal(t, 2, exitCode(r.err), "%v", r.err)
}

// --server takes host:port without a scheme, as --addr gives it.
func TestServerWithoutScheme(t *testing.T) {
	t.Parallel()
	url, _ := newServer(t)
	r := runEnv(t, nil, "", "--server", strings.TrimPrefix(url, "http://"), "queues")
	require.NoError(t, r.err, r.stderr)
}

// The webhook deliveries' internal queue can be listed.
func TestJobsOfWebhookQueue(t *testing.T) {
	t.Parallel()
	url, _ := newServer(t)
	r := runCLI(t, url, "", "jobs", "_spool.webhooks")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "no jobs\n", r.stdout)
	r = runCLI(t, url, "", "jobs", "_other")
	require.Equal(t, 2, exitCode(r.err))
}

// A shell worker reports progress on file descriptor 3.
func TestWorkProgress(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	gate := filepath.Join(t.TempDir(), "go")
	startCLI(t, url, "work", "--queue", "p", "--exec",
		`echo "40 halfway there" >&3; while [ ! -e '`+gate+`' ]; do sleep 0.01; done; echo done`)
	ctx := context.Background()
	job, err := c.Push(ctx, "p", "t", nil)
	require.NoError(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := c.Get(ctx, job.ID, 0)
		require.NoError(t, err)
		if j.Progress != nil {
			require.InDelta(t, 40, j.Progress.Percent, 0.001)
			require.Equal(t, "halfway there", j.Progress.Message)
			break
		}
		require.True(t, time.Now().Before(deadline), "no progress reported")
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, os.WriteFile(gate, nil, 0o600))
	done := waitJob(t, c, job.ID)
	require.Equal(t, spool.StateSucceeded, done.State)
	require.JSONEq(t, `"done"`, string(done.Result))
}

func TestParseProgress(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]struct {
		pct float64
		msg string
		ok  bool
	}{
		"40":             {40, "", true},
		"12.5% copying ": {12.5, "copying", true},
		"  100 done":     {100, "done", true},
		"half":           {0, "", false},
		"":               {0, "", false},
		"NaN x":          {0, "", false},
	} {
		pct, msg, ok := parseProgress(line)
		require.Equal(t, want.ok, ok, line)
		require.Equal(t, want.pct, pct, line)
		require.Equal(t, want.msg, msg, line)
	}
}
