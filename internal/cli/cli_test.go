package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/server"
)

// newServer runs a real server in-process on a temporary data directory
// and returns its URL and an SDK client for checking what the CLI did.
func newServer(t *testing.T) (string, *client.Client) {
	t.Helper()
	srv, err := server.New(context.Background(), server.Config{DataDir: t.TempDir()})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		require.NoError(t, srv.Close())
	})
	c, err := client.New(ts.URL)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return ts.URL, c
}

type result struct {
	stdout, stderr string
	err            error
}

// runCLI runs the CLI with SPOOL_SERVER=url and the given stdin.
func runCLI(t *testing.T, url, stdin string, args ...string) result {
	t.Helper()
	return runEnv(t, map[string]string{EnvServer: url}, stdin, args...)
}

func runEnv(t *testing.T, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, env{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string { return vars[k] },
	})
	return result{stdout: out.String(), stderr: errOut.String(), err: err}
}

func exitCode(err error) int { return Report(err, &bytes.Buffer{}) }

func TestPushJobQueues(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)

	r := runCLI(t, url, "", "push", "emails", "welcome", `{"to":"ada@example.com"}`)
	require.NoError(t, r.err, r.stderr)
	id := strings.TrimSpace(r.stdout)
	require.Regexp(t, `^[0-9a-f-]{36}$`, id)

	job, err := c.Get(context.Background(), id, 0)
	require.NoError(t, err)
	require.Equal(t, "welcome", job.Type)
	require.JSONEq(t, `{"to":"ada@example.com"}`, string(job.Payload))

	r = runCLI(t, url, "", "job", id)
	require.NoError(t, r.err)
	for _, want := range []string{"id:", id, "queue:", "emails", "type:", "welcome", "state:", "ready", "attempts:", "0 of 25", `payload:`, `{"to":"ada@example.com"}`} {
		require.Contains(t, r.stdout, want)
	}

	r = runCLI(t, url, "", "job", id, "--json")
	require.NoError(t, r.err)
	var got spool.Job
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, id, got.ID)

	r = runCLI(t, url, "", "queues")
	require.NoError(t, r.err)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, r.stdout)
	require.Equal(t, []string{"NAME", "WAITING", "READY", "SCHEDULED", "ACTIVE", "SUCCEEDED", "DEAD", "CANCELLED", "DEPTH", "MAX", "DEPTH", "PAUSED", "IN/S", "OUT/S", "WAIT", "P99"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"emails", "0", "1", "0", "0", "0", "0", "0", "1", "1000000", "no", "0.0167", "0", "0s"}, strings.Fields(lines[1]))

	r = runCLI(t, url, "", "queue", "stats", "emails")
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, "queue emails: depth 1 (ready 1, active 0)")
	require.Regexp(t, `arrival rate λ \(/s\)\s+0\.0167\s+0\.00333\s+0\.000278`, r.stdout)
	require.Contains(t, r.stdout, "drain time: never at the current rates")
	r = runCLI(t, url, "", "queue", "stats", "emails", "--json", "--history", "24h")
	require.NoError(t, r.err)
	var st spool.QueueStats
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	require.Len(t, st.History.Points, 288)
	r = runCLI(t, url, "", "queue", "stats", "emails", "--history", "soon")
	require.ErrorContains(t, r.err, "--history")

	r = runCLI(t, url, "", "queues", "--json")
	require.NoError(t, r.err)
	var qs spool.QueuesResponse
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &qs))
	require.Len(t, qs.Queues, 1)
	require.Equal(t, int64(1), qs.Queues[0].Depth)
}

func TestPushFlags(t *testing.T) {
	t.Parallel()
	url, _ := newServer(t)

	r := runCLI(t, url, "", "push", "reports", "build", "{}", "--json",
		"--delay", "1h", "--priority", "7", "--max-attempts", "3", "--timeout", "10m",
		"--tag", "a", "--tag", "b c", "--idempotency-key", "k1")
	require.NoError(t, r.err, r.stderr)
	var job spool.Job
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &job))
	require.Equal(t, spool.StateScheduled, job.State)
	require.Equal(t, 7, job.Priority)
	require.Equal(t, 3, job.MaxAttempts)
	require.Equal(t, 10*time.Minute, job.Timeout.D())
	require.Equal(t, []string{"a", "b c"}, job.Tags)
	require.Equal(t, "k1", job.IdempotencyKey)
	require.WithinDuration(t, time.Now().Add(time.Hour), job.RunAt, time.Minute)

	// The same idempotency key returns the first job and says so.
	r = runCLI(t, url, "", "push", "reports", "build", "{}", "--idempotency-key", "k1")
	require.NoError(t, r.err)
	require.Equal(t, job.ID, strings.TrimSpace(r.stdout))
	require.Contains(t, r.stderr, "enqueued before")

	runAt := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	r = runCLI(t, url, "", "push", "reports", "build", "--run-at", runAt.Format(time.RFC3339), "--json")
	require.NoError(t, r.err, r.stderr)
	job = spool.Job{}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &job))
	require.True(t, runAt.Equal(job.RunAt), "run_at %v, want %v", job.RunAt, runAt)
	require.Empty(t, job.Payload, "no payload argument and an empty stdin: no payload")
}

func TestPushPayloadFromStdin(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	for _, args := range [][]string{{"push", "q", "t", "-"}} {
		r := runCLI(t, url, "  {\"n\": 1}\n", args...)
		require.NoError(t, r.err, r.stderr)
		job, err := c.Get(context.Background(), strings.TrimSpace(r.stdout), 0)
		require.NoError(t, err)
		require.JSONEq(t, `{"n":1}`, string(job.Payload))
	}
}

func TestBadInputEnqueuesNothing(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"invalid JSON payload", "", []string{"push", "q", "t", "{not json"}, "payload is not valid JSON"},
		{"unquoted string payload", "", []string{"push", "q", "t", "hello"}, `a string needs quotes`},
		{"invalid JSON on stdin", "[1,2", []string{"push", "q", "t", "-"}, "payload from stdin is not valid JSON"},
		{"zero backoff", "", []string{"push", "q", "t", "--backoff", "0s"}, "--backoff must be positive"},
		{"backoff order", "", []string{"push", "q", "t", "--backoff", "1h", "--backoff-max", "1m"}, "backoff.base must not exceed"},
		{"malformed job id", "", []string{"job", "not-an-id"}, "is not a job id"},
		{"malformed id to cancel", "", []string{"cancel", "42"}, "is not a job id"},
		{"malformed id to retry", "", []string{"retry", "42"}, "is not a job id"},
		{"malformed id to wait for", "", []string{"wait", "x"}, "is not a job id"},
		{"bad delay", "", []string{"push", "q", "t", "--delay", "soon"}, "--delay: bad duration"},
		{"negative delay", "", []string{"push", "q", "t", "--delay", "-5s"}, "must not be negative"},
		{"delay and run-at", "", []string{"push", "q", "t", "--delay", "1s", "--run-at", "2030-01-01T00:00:00Z"}, "not both"},
		{"bad run-at", "", []string{"push", "q", "t", "--run-at", "tomorrow"}, "RFC 3339"},
		{"bad timeout", "", []string{"push", "q", "t", "--timeout", "forever"}, "--timeout"},
		{"bad queue name", "", []string{"push", "Bad Queue", "t"}, "queue name"},
		{"bad priority", "", []string{"push", "q", "t", "--priority", "high"}, "invalid argument"},
		{"missing type", "", []string{"push", "q"}, "takes QUEUE TYPE [PAYLOAD]"},
		{"too many arguments", "", []string{"push", "q", "t", "{}", "extra"}, "takes QUEUE TYPE [PAYLOAD]"},
		{"unknown flag", "", []string{"push", "q", "t", "--bogus"}, "unknown flag"},
		{"unknown command", "", []string{"pusj", "q", "t"}, "unknown command"},
		{"bad wait", "", []string{"job", "0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f", "--wait", "-1s"}, "--wait"},
		{"bad server URL", "", []string{"--server", "ftp://localhost:7077", "queues"}, "--server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, url, tt.stdin, tt.args...)
			require.Error(t, r.err)
			require.Contains(t, r.err.Error(), tt.want)
			var ue *UsageError
			require.ErrorAs(t, r.err, &ue)
			require.Equal(t, 2, exitCode(r.err))
			require.Empty(t, r.stdout)
		})
	}
	qs, err := c.Queues(context.Background())
	require.NoError(t, err)
	require.Empty(t, qs, "no bad command enqueued anything")
}

func TestServerErrors(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	ctx := context.Background()

	r := runCLI(t, url, "", "job", "0190a7e4-8c1e-7c3a-9d52-5b1f0e2a9c11")
	require.Error(t, r.err)
	require.ErrorIs(t, r.err, spool.ErrNotFound)
	require.Equal(t, 1, exitCode(r.err))
	require.Contains(t, r.err.Error(), "0190a7e4-8c1e-7c3a-9d52-5b1f0e2a9c11")

	// The server's own checks come back as its message.
	r = runCLI(t, url, "", "push", "q", "t", "--priority", "5000")
	require.ErrorIs(t, r.err, spool.ErrInvalid)
	require.Contains(t, r.err.Error(), "priority")
	require.Equal(t, 1, exitCode(r.err))

	one := int64(1)
	_, err := c.UpdateQueue(ctx, "tiny", spool.QueueConfig{MaxDepth: &one})
	require.NoError(t, err)
	require.NoError(t, runCLI(t, url, "", "push", "tiny", "t").err)
	r = runCLI(t, url, "", "push", "tiny", "t")
	require.ErrorIs(t, r.err, spool.ErrQueueFull)
	var stderr bytes.Buffer
	require.Equal(t, 1, Report(r.err, &stderr))
	require.Regexp(t, `^spool: queue "tiny" is full.*\(retry after [0-9hms]+\)\n$`, stderr.String())
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	r := runCLI(t, dead, "", "queues")
	require.Error(t, r.err)
	require.Contains(t, r.err.Error(), "cannot reach the Spool server at "+dead)
	require.Equal(t, 1, exitCode(r.err))

	// --server beats SPOOL_SERVER.
	url, _ := newServer(t)
	r = runCLI(t, dead, "", "--server", url, "queues")
	require.NoError(t, r.err)
}

func TestJobView(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	ctx := context.Background()

	r := runCLI(t, url, "", "push", "work", "resize", `{"w":640}`, "--max-attempts", "2", "--tag", "img")
	require.NoError(t, r.err)
	id := strings.TrimSpace(r.stdout)

	lease := spool.Duration(time.Minute)
	jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"work"}, Lease: &lease, Worker: "host-1"})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	_, err = c.Heartbeat(ctx, id, spool.HeartbeatRequest{Token: jobs[0].Lease.Token, Progress: &spool.ProgressUpdate{Percent: 40, Message: "scaling"}})
	require.NoError(t, err)

	r = runCLI(t, url, "", "job", id)
	require.NoError(t, r.err)
	for _, want := range []string{"active", "1 of 2", "host-1", "40% scaling", "lease expires:", "tags:", "img"} {
		require.Contains(t, r.stdout, want)
	}

	zero := spool.Duration(0)
	_, err = c.Fail(ctx, id, spool.FailRequest{Token: jobs[0].Lease.Token, Error: "disk full", RetryIn: &zero})
	require.NoError(t, err)
	jobs, err = c.Lease(ctx, spool.LeaseRequest{Queues: []string{"work"}, Wait: &lease})
	require.NoError(t, err)
	require.Len(t, jobs, 1)

	// job --wait returns when the job finishes.
	done := make(chan result, 1)
	go func() { done <- runCLI(t, url, "", "job", id, "--wait", "20s") }()
	_, err = c.Complete(ctx, id, spool.CompleteRequest{Token: jobs[0].Lease.Token, Result: json.RawMessage(`{"ok":true}`)})
	require.NoError(t, err)
	r = <-done
	require.NoError(t, r.err)
	for _, want := range []string{"succeeded", "2 of 2", `result:`, `{"ok":true}`, "errors:", "attempt 1", "disk full", "finished:"} {
		require.Contains(t, r.stdout, want)
	}

	// cancel and retry.
	r = runCLI(t, url, "", "cancel", id)
	require.ErrorIs(t, r.err, spool.ErrConflict)
	r = runCLI(t, url, "", "push", "work", "later", "--delay", "1h")
	require.NoError(t, r.err)
	later := strings.TrimSpace(r.stdout)
	r = runCLI(t, url, "", "cancel", later)
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, "cancelled")
	r = runCLI(t, url, "", "retry", later, "--json")
	require.NoError(t, r.err)
	var j spool.Job
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &j))
	require.Equal(t, spool.StateReady, j.State)
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

func TestServe(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--log-level", "debug"}, env{
			stdin:  strings.NewReader(""),
			stdout: &bytes.Buffer{},
			stderr: &stderr,
			// The environment names the data directory; no flag does.
			getenv: func(k string) string {
				return map[string]string{EnvData: data, EnvAddr: "127.0.0.1:1", "SPOOL_MAX_ATTEMPTS": "7"}[k]
			},
		})
	}()

	var addr string
	require.Eventually(t, func() bool {
		if m := listeningRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			return true
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, stderr.String())
		default:
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "no listening line in:\n%s", stderr.String())
	require.NotEqual(t, "127.0.0.1:0", addr, "the log names the real port")

	r := runCLI(t, "http://"+addr, "", "push", "q", "t", "{}", "--json")
	require.NoError(t, r.err, r.stderr)
	require.DirExists(t, data, "SPOOL_DATA names the data directory")
	var job spool.Job
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &job))
	require.Equal(t, 7, job.MaxAttempts, "SPOOL_MAX_ATTEMPTS sets the queues' default")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
	require.Contains(t, stderr.String(), "msg=stopped")
}

var sqsListeningRE = regexp.MustCompile(`msg="listening for the SQS API" addr=(\S+)`)

// TestServeSQS: --sqs-addr serves the SQS API beside the HTTP API, over
// the same queues.
func TestServeSQS(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--sqs-addr", "127.0.0.1:0", "--data", t.TempDir()}, env{
			stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &stderr, getenv: func(string) string { return "" },
		})
	}()
	var addr, sqsAddr string
	require.Eventually(t, func() bool {
		m, n := listeningRE.FindStringSubmatch(stderr.String()), sqsListeningRE.FindStringSubmatch(stderr.String())
		if m != nil && n != nil {
			addr, sqsAddr = m[1], n[1]
			return true
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, stderr.String())
		default:
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "no listening lines in:\n%s", stderr.String())

	form := func(v string) int {
		res, err := http.Post("http://"+sqsAddr+"/", "application/x-www-form-urlencoded", strings.NewReader(v))
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Contains(t, string(b), "RequestId", string(b))
		return res.StatusCode
	}
	require.Equal(t, http.StatusOK, form("Action=CreateQueue&QueueName=from-sqs"))
	require.Equal(t, http.StatusOK, form("Action=SendMessage&QueueUrl=from-sqs&MessageBody=hello"))
	r := runCLI(t, "http://"+addr, "", "queues", "--json")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, `"from-sqs"`)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
}

func TestServeBadSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		vars map[string]string
		want string
	}{
		{[]string{"serve", "--log-level", "loud"}, nil, "--log-level"},
		{[]string{"serve", "--sqs-addr", "nowhere"}, nil, "--sqs-addr (SPOOL_SQS_ADDR)"},
		{[]string{"serve", "--log-format", "xml"}, nil, "--log-format"},
		{[]string{"serve"}, map[string]string{EnvLogFormat: "yaml"}, "--log-format"},
		{[]string{"serve", "extra"}, nil, "no arguments"},
		{[]string{"serve", "--webhook-allow", "127.0.0.1"}, nil, "--webhook-allow (SPOOL_WEBHOOK_ALLOW) is set but WebhookSecret is empty"},
		{[]string{"serve", "--webhook-allow", "10.0.0.0/99"}, map[string]string{EnvWebhookSecret: "s"}, "--webhook-allow"},
		{[]string{"serve", "--max-depth", "-1"}, nil, "--max-depth (SPOOL_MAX_DEPTH) must be between 1 and"},
		{[]string{"serve"}, map[string]string{"SPOOL_RETENTION": "500ms"}, "--retention (SPOOL_RETENTION) must be between 1s and"},
		{[]string{"serve"}, map[string]string{"SPOOL_MAX_ATTEMPTS": "many"}, `SPOOL_MAX_ATTEMPTS="many"`},
		{[]string{"serve", "--backoff-base", "2h", "--backoff-max", "1h"}, nil, "--backoff-base"},
		{[]string{"serve", "--lease", "1ms"}, nil, "--lease (SPOOL_LEASE) must be between"},
		{[]string{"serve", "--max-payload-bytes", "2000000", "--max-body-bytes", "1000000"}, nil, "--max-payload-bytes"},
		{[]string{"serve", "--request-timeout", "-1s"}, nil, "--request-timeout"},
		{[]string{"serve", "--max-body-memory", "10"}, nil, "--max-body-memory"},
		{[]string{"serve", "--store", "mysql://u:hunter2@h/db"}, nil, "--store"},
		{[]string{"serve"}, map[string]string{"SPOOL_STORE": "mysql://u:hunter2@h/db"}, "--store (SPOOL_STORE)"},
	}
	for _, tt := range tests {
		r := runEnv(t, tt.vars, "", tt.args...)
		require.Error(t, r.err, "%v %v", tt.args, tt.vars)
		require.Contains(t, r.err.Error(), tt.want)
		require.NotContains(t, r.err.Error(), "hunter2", "a password never shows")
		require.Equal(t, 2, exitCode(r.err), "%v %v: %v", tt.args, tt.vars, r.err)
	}

	// A port in use is a failure to serve, not a usage error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	r := runEnv(t, nil, "", "serve", "--addr", ln.Addr().String(), "--data", t.TempDir())
	require.Error(t, r.err)
	require.Contains(t, r.err.Error(), "listening on")
	require.Equal(t, 1, exitCode(r.err))
}

func TestReport(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.Equal(t, 0, Report(nil, &b))
	require.Empty(t, b.String())
	require.Equal(t, 1, Report(errors.New("boom"), &b))
	require.Equal(t, "spool: boom\n", b.String())
	b.Reset()
	require.Equal(t, 2, Report(&UsageError{Cmd: "spool push", Err: errors.New("bad")}, &b))
	require.Equal(t, "spool: bad\nRun 'spool push --help' for usage.\n", b.String())
}

func TestHelp(t *testing.T) {
	t.Parallel()
	r := runEnv(t, nil, "", "--help")
	require.NoError(t, r.err)
	for _, cmd := range []string{"serve", "push", "job", "queues", "wait", "jobs", "dead", "work", "cancel", "retry"} {
		require.Contains(t, r.stdout, cmd)
	}
	r = runEnv(t, nil, "")
	require.NoError(t, r.err)
	require.Contains(t, r.stdout, "Usage:")
}
