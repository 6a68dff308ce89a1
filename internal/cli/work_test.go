package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// startCLI runs a long-lived command (work) in the background against the
// server at url; stop ends its context (as SIGINT does) and returns what
// it did. The test's cleanup stops it too.
func startCLI(t *testing.T, url string, args ...string) (stop func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	var errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, env{
			stdin:  strings.NewReader(""),
			stdout: &out,
			stderr: &errOut,
			getenv: func(k string) string { return map[string]string{EnvServer: url, EnvLogLevel: "debug"}[k] },
		})
	}()
	var once sync.Once
	var r result
	stop = func() result {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				r = result{stdout: out.String(), stderr: errOut.String(), err: err}
			case <-time.After(30 * time.Second):
				t.Errorf("the command did not stop within 30s; stderr:\n%s", errOut.String())
			}
		})
		return r
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitJob(t *testing.T, c *client.Client, id string) *spool.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := c.Wait(ctx, id)
	require.NoError(t, err)
	return j
}

func TestWorkCat(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	ctx := context.Background()
	stop := startCLI(t, url, "work", "--queue", "echo", "--concurrency", "3", "--exec", "cat")

	var ids []string
	for i := 0; i < 5; i++ {
		j, err := c.Push(ctx, "echo", "copy", map[string]any{"n": i, "text": "héllo"})
		require.NoError(t, err)
		ids = append(ids, j.ID)
	}
	none, err := c.Push(ctx, "echo", "copy", nil)
	require.NoError(t, err)
	for i, id := range ids {
		j := waitJob(t, c, id)
		require.Equal(t, spool.StateSucceeded, j.State, "errors: %v", j.Errors)
		require.JSONEq(t, fmt.Sprintf(`{"n":%d,"text":"héllo"}`, i), string(j.Result), "the payload came back as the result")
	}
	j := waitJob(t, c, none.ID)
	require.Equal(t, spool.StateSucceeded, j.State)
	require.Empty(t, j.Result, "no payload, no output, no result")

	r := stop()
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stderr, "worker stopped")
}

func TestWorkEnvironmentAndTextResult(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	startCLI(t, url, "work", "--queue", "env", "--exec",
		`printf '%s %s %s %s %s\n' "$SPOOL_JOB_ID" "$SPOOL_JOB_TYPE" "$SPOOL_JOB_QUEUE" "$SPOOL_JOB_ATTEMPT" "$SPOOL_JOB_MAX_ATTEMPTS"`)
	job, err := c.Push(context.Background(), "env", "show-env", nil, client.MaxAttempts(4))
	require.NoError(t, err)
	j := waitJob(t, c, job.ID)
	require.Equal(t, spool.StateSucceeded, j.State, "errors: %v", j.Errors)
	var got string
	require.NoError(t, json.Unmarshal(j.Result, &got), "text that is not JSON becomes a JSON string: %s", j.Result)
	require.Equal(t, job.ID+" show-env env 1 4", got)
}

func TestWorkFailingCommand(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	startCLI(t, url, "work", "--queue", "fail", "--exec", `sh -c 'echo bad >&2; exit 3'`)
	job, err := c.Push(context.Background(), "fail", "t", nil, client.MaxAttempts(1))
	require.NoError(t, err)
	j := waitJob(t, c, job.ID)
	require.Equal(t, spool.StateDead, j.State)
	require.Len(t, j.Errors, 1)
	require.Equal(t, "exit status 3: bad", j.Errors[0].Error)
}

// A failure reports the end of stderr, not all of it.
func TestWorkStderrTail(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	startCLI(t, url, "work", "--queue", "noisy", "--exec",
		`i=0; while [ $i -lt 400 ]; do echo "line $i of noise to fill the buffer" >&2; i=$((i+1)); done; echo THE-END >&2; exit 1`)
	job, err := c.Push(context.Background(), "noisy", "t", nil, client.MaxAttempts(1))
	require.NoError(t, err)
	j := waitJob(t, c, job.ID)
	require.Equal(t, spool.StateDead, j.State)
	msg := j.Errors[0].Error
	require.True(t, strings.HasPrefix(msg, "exit status 1: ..."), msg[:min(len(msg), 80)])
	require.True(t, strings.HasSuffix(msg, "THE-END"))
	require.LessOrEqual(t, len(msg), 4<<10+len("exit status 1: ..."))
	require.NotContains(t, msg, "line 0 of noise", "the start was dropped")
}

// A command past its timeout is killed with its whole process group.
func TestWorkTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	pids := filepath.Join(t.TempDir(), "pids")
	// The shell starts a background child and waits: both must die.
	command := fmt.Sprintf(`sleep 60 & echo $! >> %s; echo $$ >> %s; wait`, pids, pids)
	startCLI(t, url, "work", "--queue", "slow", "--timeout", "300ms", "--exec", command)
	job, err := c.Push(context.Background(), "slow", "t", nil, client.MaxAttempts(1))
	require.NoError(t, err)
	j := waitJob(t, c, job.ID)
	require.Equal(t, spool.StateDead, j.State)
	require.Equal(t, "timed out after 300ms (the worker's default job timeout): the command's process group was killed", j.Errors[0].Error)

	b, err := os.ReadFile(pids)
	require.NoError(t, err)
	fields := strings.Fields(string(b))
	require.Len(t, fields, 2, "the child's and the shell's pids")
	for _, f := range fields {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return !alive(pid) }, 10*time.Second, 10*time.Millisecond, "process %d still runs", pid)
	}
}

// A job's own timeout applies the same way.
func TestWorkJobTimeout(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	startCLI(t, url, "work", "--queue", "slow", "--exec", "sleep 60")
	job, err := c.Push(context.Background(), "slow", "t", nil, client.MaxAttempts(1), client.JobTimeout(200*time.Millisecond))
	require.NoError(t, err)
	j := waitJob(t, c, job.ID)
	require.Equal(t, spool.StateDead, j.State)
	require.Equal(t, "timed out after 200ms (the job's timeout): the command's process group was killed", j.Errors[0].Error)
}

// alive reports whether a process exists and is not a zombie (a dead
// child its parent, maybe init in a container, has not reaped yet).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// SIGINT (the context ending) stops leasing; a command that does not
// finish within --grace is killed and its job handed back at once, its
// attempt not counted.
func TestWorkGracefulShutdownReleasesJob(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	started := filepath.Join(t.TempDir(), "started")
	stop := startCLI(t, url, "work", "--queue", "q", "--grace", "100ms", "--exec", "touch "+started+"; sleep 60")
	job, err := c.Push(context.Background(), "q", "t", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, err := os.Stat(started); return err == nil }, 30*time.Second, 10*time.Millisecond)

	r := stop()
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stderr, "released")
	j, err := c.Get(context.Background(), job.ID, 0)
	require.NoError(t, err)
	require.Equal(t, spool.StateReady, j.State)
	require.Equal(t, 0, j.Attempt)
	require.Empty(t, j.Errors)
}

func TestWorkBadFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"work", "--exec", "cat"}, "--queue is required"},
		{[]string{"work", "--queue", "q"}, "--exec is required"},
		{[]string{"work", "--queue", "Bad Queue", "--exec", "cat"}, "queue name"},
		{[]string{"work", "--queue", "q", "--exec", "cat", "--concurrency", "0"}, "--concurrency"},
		{[]string{"work", "--queue", "q", "--exec", "cat", "--lease", "10ms"}, "--lease"},
		{[]string{"work", "--queue", "q", "--exec", "cat", "--timeout", "-1s"}, "--timeout"},
		{[]string{"work", "--queue", "q", "--exec", "cat", "extra"}, "no arguments"},
	} {
		r := runEnv(t, nil, "", tt.args...)
		require.ErrorContains(t, r.err, tt.want)
		require.Equal(t, 2, exitCode(r.err))
	}
}

func TestStdoutResultAndTail(t *testing.T) {
	t.Parallel()
	require.Nil(t, stdoutResult(nil))
	require.Nil(t, stdoutResult([]byte(" \n")))
	require.Equal(t, `{"a":1}`, string(stdoutResult([]byte("  {\"a\":1}\n"))))
	require.Equal(t, `42`, string(stdoutResult([]byte("42\n"))))
	require.Equal(t, `"hello world"`, string(stdoutResult([]byte("hello world\n"))))
	require.Equal(t, `"two\nlines"`, string(stdoutResult([]byte("two\nlines\n"))))

	tl := &tail{max: 8}
	_, _ = tl.Write([]byte("abc"))
	require.Equal(t, "abc", tl.String())
	_, _ = tl.Write([]byte("defghij"))
	require.Equal(t, "...cdefghij", tl.String())
	_, _ = tl.Write([]byte("0123456789"))
	require.Equal(t, "...23456789", tl.String())

	cp := &capped{max: 4}
	_, _ = cp.Write([]byte("abcdef"))
	require.True(t, cp.over)
	require.Equal(t, "abcd", cp.String())
}
