// Package hostile tests the real spool binary against hostile clients:
// connections that declare large request bodies and send almost nothing
// must not make the process's memory grow with what they declare.
// Skipped with -short.
package hostile

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolq/spool/internal/testproc"
)

var spoolBin string

func TestMain(m *testing.M) { testproc.Main(m, "hostile", &spoolBin) }

// rssMiB reads the resident set size of process pid.
func rssMiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the server's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return kb >> 10
		}
	}
	t.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}

// metric reads one unlabelled sample from the server's /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}

func enqueue(t *testing.T, base string) {
	t.Helper()
	res, err := http.Post(base+"/v1/queues/q/jobs", "application/json", strings.NewReader(`{"type":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("enqueue answered %s", res.Status)
	}
}

// A hundred connections that each declare a 16 MiB body and send one
// byte cost the server little memory (they used to cost 16 MiB each, and
// got it killed under a memory limit), and other clients are served.
func TestHostileBodiesDoNotGrowTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the spool binary; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test reads /proc and needs Linux, which CI runs on")
		}
		t.Skip("reads the server's memory from /proc: Linux only")
	}
	const conns = 100
	srv := testproc.Start(t, spoolBin, "hostile", 30*time.Second, "--data", t.TempDir())
	base := srv.URL()
	enqueue(t, base)
	before := rssMiB(t, srv.PID())

	for range conns {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := fmt.Fprintf(c, "POST /v1/queues/q/jobs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", srv.Addr, 16<<20); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, base, "spool_http_body_bytes_in_flight") < conns*(64<<10) {
		if time.Now().After(deadline) {
			t.Fatalf("the server is not reading the %d bodies (RSS %d MiB)", conns, rssMiB(t, srv.PID()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	during := rssMiB(t, srv.PID())
	t.Logf("RSS %d MiB before, %d MiB with %d hostile bodies in flight", before, during, conns)
	if during-before > 64 {
		t.Fatalf("RSS grew by %d MiB with %d bodies that declared 16 MiB and sent 1 byte", during-before, conns)
	}
	enqueue(t, base) // others are served meanwhile
}
