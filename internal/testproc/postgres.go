package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// Postgres is a PostgreSQL server of one test's own, which the test may
// restart or crash: the logic of scripts/with-postgres, in Go.
type Postgres struct {
	// URL connects to its database "postgres" as the superuser "spool".
	URL    string
	bindir string
	dir    string // holds data/, the log and the unix socket
	port   int
	runas  []string // runuser -u postgres -- when running as root
}

// PostgresBindir returns the directory of initdb and pg_ctl, as
// scripts/with-postgres finds it (which exports it), or "".
func PostgresBindir() string {
	ok := func(d string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				return false
			}
		}
		return true
	}
	for _, env := range []string{"SPOOL_TEST_POSTGRES_BINDIR", "PG_BINDIR"} {
		if d := os.Getenv(env); d != "" && ok(d) {
			return d
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range append(dirs, "/usr/local/pgsql/bin") {
		if ok(d) {
			return d
		}
	}
	return ""
}

// StartPostgres initdb's and starts a server on a free port of 127.0.0.1
// (fsync and synchronous_commit on), stopped and removed when the test
// ends. Without PostgreSQL binaries the test is skipped, or fails under
// CI=true.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bindir, dir, runas := pgWorkdir(t, "spool-test-pg-")
	p := &Postgres{bindir: bindir, dir: dir, runas: runas}
	if out, err := p.run("initdb", "-D", p.data(), "-U", "spool", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.port = freePort(t)
	p.URL = fmt.Sprintf("postgres://spool@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	t.Cleanup(func() {
		_, _ = p.run("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop")
	})
	if out, err := p.run("pg_ctl", "-D", p.data(), "-l", p.logPath(), "-w", "-t", "60", "-s", "-o", p.options(), "start"); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, p.Log())
	}
	return p
}

// pgWorkdir finds the PostgreSQL binaries (skipping the test without
// them, or failing it under CI=true) and makes a directory for servers of
// the test's own, removed when it ends. As root, the servers run as the
// postgres user (PostgreSQL refuses root): runas is the prefix that does
// it, and the directory is the postgres user's.
func pgWorkdir(t testing.TB, prefix string) (bindir, dir string, runas []string) {
	t.Helper()
	bindir = PostgresBindir()
	if bindir == "" {
		msg := "no PostgreSQL server binaries (initdb, pg_ctl): set SPOOL_TEST_POSTGRES_BINDIR or PG_BINDIR, or run under scripts/with-postgres"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	parent := os.TempDir()
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root and there is no postgres user to run PostgreSQL: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		runas = []string{"runuser", "-u", "postgres", "--"}
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return bindir, dir, runas
}

func (p *Postgres) data() string    { return filepath.Join(p.dir, "data") }
func (p *Postgres) logPath() string { return filepath.Join(p.dir, "server.log") }

func (p *Postgres) run(bin string, args ...string) ([]byte, error) {
	argv := append(append([]string{}, p.runas...), append([]string{filepath.Join(p.bindir, bin)}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

func (p *Postgres) options() string {
	return fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=100",
		p.port, p.dir)
}

// Log returns the server's log so far.
func (p *Postgres) Log() string {
	b, _ := os.ReadFile(p.logPath())
	return string(b)
}

// Restart is pg_ctl restart with the shutdown mode given: "fast" ends the
// sessions cleanly, "immediate" stops without a checkpoint, as a crash
// would, so the start replays the WAL.
func (p *Postgres) Restart(mode string) error {
	if out, err := p.run("pg_ctl", "-D", p.data(), "-l", p.logPath(), "-m", mode, "-w", "-t", "60", "-s", "-o", p.options(), "restart"); err != nil {
		return fmt.Errorf("pg_ctl restart -m %s: %v\n%s", mode, err, out)
	}
	return nil
}

// Stop is pg_ctl stop with the shutdown mode given ("fast": sessions are
// ended, as in a maintenance restart; "immediate": as a crash).
func (p *Postgres) Stop(mode string) error {
	if out, err := p.run("pg_ctl", "-D", p.data(), "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	return nil
}

// Start starts a stopped server again, with the same options.
func (p *Postgres) Start() error {
	if out, err := p.run("pg_ctl", "-D", p.data(), "-l", p.logPath(), "-w", "-t", "60", "-s", "-o", p.options(), "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, p.Log())
	}
	return nil
}
