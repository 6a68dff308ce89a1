package multinode

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is a PostgreSQL server of one test's own, which the test may
// stop, start and restart: the logic of scripts/with-postgres, in Go.
type pgServer struct {
	bindir string
	dir    string // holds data/, the log and the unix socket
	port   int
	runas  []string // runuser -u postgres -- when running as root
	url    string
}

// findBindir returns the directory of initdb and pg_ctl, as
// scripts/with-postgres finds it (which exports it).
func findBindir() string {
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

// startPostgres initdb's and starts a server on a free port of 127.0.0.1,
// stopped and removed when the test ends.
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	bindir := findBindir()
	if bindir == "" {
		msg := "no PostgreSQL server binaries (initdb, pg_ctl): set SPOOL_TEST_POSTGRES_BINDIR or PG_BINDIR, or run under scripts/with-postgres"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	parent := os.TempDir()
	var runas []string
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		// The server refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root and there is no postgres user to run PostgreSQL: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		runas = []string{"runuser", "-u", "postgres", "--"}
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "spool-multinode-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p := &pgServer{bindir: bindir, dir: dir, runas: runas}
	if out, err := p.run("initdb", "-D", p.data(), "-U", "spool", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p.url = fmt.Sprintf("postgres://spool@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	t.Cleanup(func() {
		_, _ = p.run("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop")
	})
	p.start(t)
	return p
}

func (p *pgServer) data() string { return filepath.Join(p.dir, "data") }

func (p *pgServer) run(bin string, args ...string) ([]byte, error) {
	argv := append(append([]string{}, p.runas...), append([]string{filepath.Join(p.bindir, bin)}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

func (p *pgServer) options() string {
	return fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=on -c synchronous_commit=on -c max_connections=100",
		p.port, p.dir)
}

func (p *pgServer) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
	return string(b)
}

// start starts the server and waits until it accepts connections.
func (p *pgServer) start(t *testing.T) {
	t.Helper()
	if out, err := p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "server.log"), "-w", "-t", "60", "-s", "-o", p.options(), "start"); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, p.log())
	}
}

// stop shuts the server down ("fast": sessions are ended, as in a
// failover or a maintenance restart).
func (p *pgServer) stop(t *testing.T) {
	t.Helper()
	if out, err := p.run("pg_ctl", "-D", p.data(), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// restart is pg_ctl restart: stop (fast) and start with the same options.
func (p *pgServer) restart(t *testing.T) {
	t.Helper()
	if out, err := p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "server.log"), "-m", "fast", "-w", "-t", "60", "-s", "-o", p.options(), "restart"); err != nil {
		t.Fatalf("pg_ctl restart: %v\n%s\n%s", err, out, p.log())
	}
}

// query runs a one-value query on the server.
func (p *pgServer) queryInt(t *testing.T, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url)
	if err != nil {
		t.Fatalf("connecting to the test's PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", strings.TrimSpace(sql), err)
	}
	return n
}
