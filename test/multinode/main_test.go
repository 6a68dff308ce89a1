package multinode

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/testproc"
)

// spoolBin is the spool binary built by TestMain.
var spoolBin string

const urlEnv = "SPOOL_TEST_POSTGRES_URL"

func TestMain(m *testing.M) { testproc.Main(m, "multinode", &spoolBin) }

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

// freshSchema returns base with search_path set to a new schema (and its
// name), dropped when the test ends.
func freshSchema(t *testing.T, base string) (storeURL, schema string) {
	return testproc.FreshSchema(t, base, "mn_")
}

// node is one running `spool serve`.
type node = testproc.Server

// startNode runs `spool serve` with args (--store ... or --data ...) on a
// free port and waits for the log line that names its address.
func startNode(t *testing.T, name string, args ...string) *node {
	t.Helper()
	return await(t, launch(name, args...))
}

// launch starts the process; await waits for its address. launch may run
// in any goroutine, await only in the test's.
func launch(name string, args ...string) *node { return testproc.Launch(spoolBin, name, args...) }

func await(t *testing.T, n *node) *node {
	t.Helper()
	return n.Await(t, 30*time.Second)
}

// newClient returns a client of n with opts (after a 10s default timeout).
func newClient(t *testing.T, n *node, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(n.URL(), append([]client.Option{client.WithTimeout(10 * time.Second)}, opts...)...)
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
	resp, err := http.Get(n.URL() + "/metrics")
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
	resp, err := c.Get(n.URL() + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
