// Package failover runs Spool nodes (the real binary) on a PostgreSQL
// primary with a synchronous streaming standby, kills the primary with
// SIGKILL under load and promotes the standby: every job answered 202 must
// be there and finish, clients see 503 (never 500) during the switch, and
// the nodes recover by themselves. It needs the PostgreSQL server binaries
// (SPOOL_TEST_POSTGRES_BINDIR, as scripts/with-postgres exports, or
// /usr/lib/postgresql/*/bin) and, as root, the postgres user; it skips
// without them, except under CI=true, where it fails.
package failover

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/testproc"
)

var spoolBin string

func TestMain(m *testing.M) { testproc.Main(m, "failover", &spoolBin) }

// need skips (or, under CI=true, fails) the test.
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// pg runs PostgreSQL programs as the postgres user when root.
type pg struct {
	t      *testing.T
	bindir string
	runas  []string
}

func newPG(t *testing.T) *pg {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the failover test starts two PostgreSQL servers")
	}
	bindir := os.Getenv("SPOOL_TEST_POSTGRES_BINDIR")
	if bindir == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "pg_basebackup")); err == nil {
				bindir = d
				break
			}
		}
	}
	if bindir == "" {
		need(t, "no PostgreSQL server binaries (set SPOOL_TEST_POSTGRES_BINDIR, or run under scripts/with-postgres)")
	}
	p := &pg{t: t, bindir: bindir}
	if os.Getuid() == 0 {
		if _, err := exec.LookPath("runuser"); err != nil {
			need(t, "running as root without runuser: PostgreSQL refuses to run as root")
		}
		p.runas = []string{"runuser", "-u", "postgres", "--"}
	}
	return p
}

func (p *pg) cmd(name string, args ...string) *exec.Cmd {
	all := append(append(append([]string{}, p.runas...), filepath.Join(p.bindir, name)), args...)
	return exec.Command(all[0], all[1:]...)
}

func (p *pg) run(name string, args ...string) {
	p.t.Helper()
	out, err := p.cmd(name, args...).CombinedOutput()
	require.NoError(p.t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is one PostgreSQL server (a data directory).
type server struct {
	dir  string
	port int
}

func (p *pg) start(s server) {
	p.t.Helper()
	p.run("pg_ctl", "-D", s.dir, "-l", s.dir+".log", "-w", "-t", "60", "-s", "start")
	p.t.Cleanup(func() {
		_ = p.cmd("pg_ctl", "-D", s.dir, "-m", "immediate", "-w", "stop").Run()
	})
}

// postmasterPID reads the PID of a running server.
func postmasterPID(t *testing.T, s server) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	require.NoError(t, err)
	return pid
}

func (p *pg) psql(s server, sql string) string {
	p.t.Helper()
	out, err := exec.Command(filepath.Join(p.bindir, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", "postgres",
		"-d", "postgres", "-Atc", sql).CombinedOutput()
	require.NoError(p.t, err, "psql %q: %s", sql, out)
	return strings.TrimSpace(string(out))
}

// cluster sets up a primary with a synchronous streaming standby.
func (p *pg) cluster() (primary, standby server) {
	t := p.t
	dir, err := os.MkdirTemp("", "spool-failover-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	if len(p.runas) > 0 {
		require.NoError(t, exec.Command("chown", "postgres:", dir).Run())
	}
	primary = server{dir: filepath.Join(dir, "primary"), port: freePort(t)}
	standby = server{dir: filepath.Join(dir, "standby"), port: freePort(t)}
	p.run("initdb", "-D", primary.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = on
synchronous_commit = on
wal_level = replica
max_wal_senders = 5
hot_standby = on
`, primary.port, dir)
	appendFile(t, filepath.Join(primary.dir, "postgresql.conf"), conf)
	appendFile(t, filepath.Join(primary.dir, "pg_hba.conf"), "host replication all 127.0.0.1/32 trust\n")
	p.start(primary)
	p.psql(primary, "CREATE DATABASE spool")
	p.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres", "-D", standby.dir, "-R", "-X", "stream", "-c", "fast")
	appendFile(t, filepath.Join(standby.dir, "postgresql.conf"), fmt.Sprintf("port = %d\n", standby.port))
	p.start(standby)
	// Synchronous from now on: every commit waits for the standby's flush.
	p.psql(primary, "ALTER SYSTEM SET synchronous_standby_names = '*'")
	p.psql(primary, "SELECT pg_reload_conf()")
	deadline := time.Now().Add(60 * time.Second)
	for p.psql(primary, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") != "1" {
		require.True(t, time.Now().Before(deadline), "the standby did not become synchronous")
		time.Sleep(50 * time.Millisecond)
	}
	return primary, standby
}

func appendFile(t *testing.T, name, text string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(text)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// history records what the clients saw.
type history struct {
	mu         sync.Mutex
	accepted   map[string]bool // 202
	completed  map[string]bool // complete answered 200
	statuses   map[int]int
	bodies500  []string
	firstAfter time.Time // first 202 to a request sent after the kill
	killedAt   time.Time
}

func (h *history) status(code int, body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.statuses[code]++
	if code >= 500 && code != http.StatusServiceUnavailable {
		h.bodies500 = append(h.bodies500, string(body))
	}
}

func post(hc *http.Client, url string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	res, err := hc.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

func TestFailoverLosesNothing(t *testing.T) {
	p := newPG(t)
	began := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	primary, standby := p.cluster()
	phase("primary and synchronous standby up")
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/spool?target_session_attrs=read-write&sslmode=disable&connect_timeout=2",
		primary.port, standby.port)
	nodes := []*testproc.Server{
		testproc.Start(t, spoolBin, "node a", 60*time.Second, "--store", url),
		testproc.Start(t, spoolBin, "node b", 60*time.Second, "--store", url),
	}
	phase("two nodes up")
	h := &history{accepted: map[string]bool{}, completed: map[string]bool{}, statuses: map[int]int{}}
	hc := &http.Client{Timeout: 10 * time.Second}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range 4 { // producers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				node := nodes[(i+n)%len(nodes)]
				sent := time.Now()
				code, body, err := post(hc, node.URL()+"/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t", Payload: json.RawMessage(`{"n":1}`)})
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				h.status(code, body)
				if code == http.StatusAccepted {
					var j spool.Job
					if err := json.Unmarshal(body, &j); err != nil || j.ID == "" {
						t.Errorf("a 202 without a job: %v: %s", err, body)
						continue
					}
					h.mu.Lock()
					if h.accepted[j.ID] {
						t.Errorf("job %s accepted twice", j.ID)
					}
					h.accepted[j.ID] = true
					if !h.killedAt.IsZero() && sent.After(h.killedAt) && h.firstAfter.IsZero() {
						h.firstAfter = time.Now()
					}
					h.mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	var working atomic.Bool
	working.Store(true)
	for i := range 2 { // workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for working.Load() {
				node := nodes[i%len(nodes)]
				code, body, err := post(hc, node.URL()+"/v1/leases", spool.LeaseRequest{Queues: []string{"q"}, Max: 20, Wait: ptr(spool.Duration(time.Second)), Lease: ptr(spool.Duration(5 * time.Second))})
				if err != nil || code != http.StatusOK {
					if err == nil {
						h.status(code, body)
					}
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var got spool.JobsResponse
				if json.Unmarshal(body, &got) != nil {
					continue
				}
				for _, j := range got.Jobs {
					code, body, err := post(hc, node.URL()+"/v1/jobs/"+j.ID+"/complete", map[string]any{"token": j.Lease.Token})
					if err != nil {
						continue
					}
					h.status(code, body)
					if code == http.StatusOK {
						h.mu.Lock()
						h.completed[j.ID] = true
						h.mu.Unlock()
					}
				}
			}
		}()
	}
	defer func() {
		stop.Store(true)
		working.Store(false)
		wg.Wait()
	}()

	waitFor(t, 30*time.Second, "jobs accepted before the kill", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.accepted) >= 200
	})
	phase("load running")
	pid := postmasterPID(t, primary)
	h.mu.Lock()
	h.killedAt = time.Now()
	h.mu.Unlock()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	p.run("pg_ctl", "-D", standby.dir, "-w", "-t", "60", "promote")
	phase("primary killed, standby promoted")
	waitFor(t, 60*time.Second, "an enqueue accepted after the failover", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return !h.firstAfter.IsZero()
	})
	h.mu.Lock()
	recovery := h.firstAfter.Sub(h.killedAt)
	h.mu.Unlock()
	phase("first enqueue accepted after the kill")
	time.Sleep(2 * time.Second) // load after the switch as well
	stop.Store(true)

	// Every accepted job finishes.
	h.mu.Lock()
	accepted := make([]string, 0, len(h.accepted))
	for id := range h.accepted {
		accepted = append(accepted, id)
	}
	h.mu.Unlock()
	waitFor(t, 120*time.Second, "every accepted job succeeded", func() bool {
		for len(accepted) > 0 {
			id := accepted[0]
			res, err := hc.Get(nodes[0].URL() + "/v1/jobs/" + id)
			if err != nil {
				return false
			}
			var j spool.Job
			err = json.NewDecoder(res.Body).Decode(&j)
			res.Body.Close()
			if res.StatusCode == http.StatusNotFound {
				t.Fatalf("job %s was answered 202 and is lost after the failover", id)
			}
			if err != nil || j.State != spool.StateSucceeded {
				return false
			}
			accepted = accepted[1:]
		}
		return true
	})
	phase("every accepted job succeeded")
	working.Store(false)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Empty(t, h.bodies500, "answers other than 503 among the 5xx during the failover")
	t.Logf("failover: %d jobs accepted, all succeeded; statuses %v; from kill -9 of the primary to the first accepted enqueue: %s",
		len(h.accepted), h.statuses, recovery.Round(time.Millisecond))
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
