package multinode

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolq/spool/client"
)

// spoolBin is the spool binary built by TestMain.
var spoolBin string

const urlEnv = "SPOOL_TEST_POSTGRES_URL"

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "spool-multinode-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "multinode test:", err)
		os.Exit(1)
	}
	spoolBin = filepath.Join(dir, "spool")
	build := exec.Command("go", "build", "-o", spoolBin, "github.com/spoolq/spool/cmd/spool")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "multinode test: building the spool binary: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needPostgres returns the test server's URL, skipping the test without
// one (failing it under CI) and under -short.
func needPostgres(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the multi-node tests run real processes on PostgreSQL; skipped with -short")
	}
	u := os.Getenv(urlEnv)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set and CI=true: the multi-node tests must run (wrap the command in scripts/with-postgres)", urlEnv)
		}
		t.Skipf("%s is not set; scripts/with-postgres starts a throwaway PostgreSQL", urlEnv)
	}
	return u
}

// freshSchema makes a schema name, returns base with search_path set to
// it (the nodes' --store URL; the first node to start creates it), and
// drops the schema when the test ends.
func freshSchema(t *testing.T, base string) (storeURL, schema string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema = "mn_" + hex.EncodeToString(b[:])
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parsing %s: %v", urlEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return u.String(), schema
}

// node is one running `spool serve`.
type node struct {
	name string
	cmd  *exec.Cmd
	addr string
	logs *logSink
	done chan struct{} // closed once the process has exited and been reaped
	err  error
}

// startNode runs `spool serve` with args (--store ... or --data ...) on a
// free port and waits for the log line that names its address.
func startNode(t *testing.T, name string, args ...string) *node {
	t.Helper()
	return await(t, launch(name, args...))
}

// launch starts the process; await waits for its address. launch may run
// in any goroutine, await only in the test's.
func launch(name string, args ...string) *node {
	logs := &logSink{addr: make(chan string, 1)}
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "text"}, args...)
	cmd := exec.Command(spoolBin, args...)
	cmd.Stdout = logs
	cmd.Stderr = logs
	cmd.Env = append(os.Environ(), "SPOOL_LOG_LEVEL=info")
	n := &node{name: name, cmd: cmd, logs: logs, done: make(chan struct{})}
	if n.err = cmd.Start(); n.err != nil {
		close(n.done)
		return n
	}
	go func() {
		n.err = cmd.Wait()
		close(n.done)
	}()
	return n
}

func await(t *testing.T, n *node) *node {
	t.Helper()
	if n.cmd.Process == nil {
		t.Fatalf("starting %s: %v", spoolBin, n.err)
	}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("log of node %s (pid %d):\n%s", n.name, n.cmd.Process.Pid, n.logs.String())
		}
	})
	select {
	case n.addr = <-n.logs.addr:
		return n
	case <-n.done:
		t.Fatalf("node %s exited before listening: %v\n%s", n.name, n.err, n.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not log its address within 30s:\n%s", n.name, n.logs.String())
	}
	return nil
}

func (n *node) url() string { return "http://" + n.addr }

// kill sends SIGKILL and reaps the process.
func (n *node) kill() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.done
}

// stop asks the node to shut down gracefully and checks it exits cleanly.
func (n *node) stop(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to node %s: %v", n.name, err)
	}
	select {
	case <-n.done:
		if n.err != nil {
			t.Fatalf("node %s exited with %v after SIGTERM", n.name, n.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not exit within 30s of SIGTERM", n.name)
	}
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)\s`)

// logSink collects a process's output and reports the listening address.
type logSink struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
	sent bool
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if !s.sent {
		if m := listeningRE.FindSubmatch(s.buf.Bytes()); m != nil {
			s.sent = true
			s.addr <- string(m[1])
		}
	}
	return len(p), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// count returns how many log lines contain sub.
func (s *logSink) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.buf.String(), sub)
}

// newClient returns a client of n with opts (after a 10s default timeout).
func newClient(t *testing.T, n *node, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(n.url(), append([]client.Option{client.WithTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// eventually polls cond every 10ms until it holds, failing the test after
// timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inFlight returns the node's spool_http_requests_in_flight gauge, the
// scrape itself included.
func inFlight(n *node) int {
	resp, err := http.Get(n.url() + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "spool_http_requests_in_flight "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f)
		}
	}
	return -1
}

// status answers GET path on n with its status code (0: no answer).
func status(n *node, path string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(n.url() + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
