package testproc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostgresPair is a PostgreSQL primary with a synchronous streaming
// standby, of one test's own: every commit returns only once the standby
// has flushed it, so the standby, once promoted, holds everything the
// primary acknowledged.
type PostgresPair struct {
	// URL names both servers (database "spool", superuser "postgres"),
	// with target_session_attrs=read-write: a client uses whichever takes
	// writes.
	URL              string
	bindir           string
	dir              string
	primary, standby pgServer
	runas            []string
}

type pgServer struct {
	dir  string
	port int
}

// StartPostgresPair starts the primary, creates the database, clones the
// standby with pg_basebackup, starts it, makes it synchronous and waits
// until it is. Both are stopped and removed when the test ends. Without
// PostgreSQL binaries the test is skipped, or fails under CI=true.
func StartPostgresPair(t testing.TB) *PostgresPair {
	t.Helper()
	bindir, dir, runas := pgWorkdir(t, "spool-test-pgpair-")
	p := &PostgresPair{bindir: bindir, dir: dir, runas: runas,
		primary: pgServer{dir: filepath.Join(dir, "primary"), port: freePort(t)},
		standby: pgServer{dir: filepath.Join(dir, "standby"), port: freePort(t)},
	}
	must := func(what string, out []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
	}
	out, err := p.run("initdb", "-D", p.primary.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	must("initdb", out, err)
	must("configuring the primary", nil, appendTo(filepath.Join(p.primary.dir, "postgresql.conf"), fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = on
synchronous_commit = on
wal_level = replica
max_wal_senders = 5
hot_standby = on
`, p.primary.port, dir)))
	must("configuring the primary", nil, appendTo(filepath.Join(p.primary.dir, "pg_hba.conf"), "host replication all 127.0.0.1/32 trust\n"))
	p.start(t, p.primary)
	out, err = p.psql(p.primary, "CREATE DATABASE spool")
	must("creating the database", out, err)
	out, err = p.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(p.primary.port), "-U", "postgres",
		"-D", p.standby.dir, "-R", "-X", "stream", "-c", "fast")
	must("pg_basebackup", out, err)
	must("configuring the standby", nil, appendTo(filepath.Join(p.standby.dir, "postgresql.conf"), fmt.Sprintf("port = %d\n", p.standby.port)))
	p.start(t, p.standby)
	// Synchronous from now on (not before: the database's creation would
	// wait for a standby that does not exist yet).
	out, err = p.psql(p.primary, "ALTER SYSTEM SET synchronous_standby_names = '*'")
	must("making the standby synchronous", out, err)
	out, err = p.psql(p.primary, "SELECT pg_reload_conf()")
	must("making the standby synchronous", out, err)
	for deadline := time.Now().Add(60 * time.Second); ; {
		out, err := p.psql(p.primary, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
		if err == nil && strings.TrimSpace(string(out)) == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not become synchronous: %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/spool?target_session_attrs=read-write&sslmode=disable&connect_timeout=2",
		p.primary.port, p.standby.port)
	return p
}

// KillPrimary sends SIGKILL to the primary's postmaster and to every
// process it started (the backends, the WAL sender), as a crash of its
// machine would end them all at once: a postmaster killed alone leaves
// its backends committing until they notice.
func (p *PostgresPair) KillPrimary() error {
	b, err := os.ReadFile(filepath.Join(p.primary.dir, "postmaster.pid"))
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		return fmt.Errorf("postmaster.pid: %w", err)
	}
	children := childrenOf(pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL) // may have exited already
	}
	return nil
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) >= 2 {
			if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == pid {
				out = append(out, n)
			}
		}
	}
	return out
}

// Promote makes the standby the primary (pg_ctl promote, waiting until it
// takes writes).
func (p *PostgresPair) Promote() error {
	if out, err := p.run("pg_ctl", "-D", p.standby.dir, "-w", "-t", "60", "promote"); err != nil {
		return fmt.Errorf("pg_ctl promote: %v\n%s", err, out)
	}
	return nil
}

func (p *PostgresPair) start(t testing.TB, s pgServer) {
	t.Helper()
	t.Cleanup(func() { _, _ = p.run("pg_ctl", "-D", s.dir, "-m", "immediate", "-w", "stop") })
	if out, err := p.run("pg_ctl", "-D", s.dir, "-l", s.dir+".log", "-w", "-t", "60", "-s", "start"); err != nil {
		log, _ := os.ReadFile(s.dir + ".log")
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

func (p *PostgresPair) run(bin string, args ...string) ([]byte, error) {
	argv := append(append([]string{}, p.runas...), append([]string{filepath.Join(p.bindir, bin)}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

func (p *PostgresPair) psql(s pgServer, sql string) ([]byte, error) {
	return exec.Command(filepath.Join(p.bindir, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", "postgres",
		"-d", "postgres", "-Atc", sql).CombinedOutput()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func appendTo(name, text string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
