package multinode

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolq/spool/internal/testproc"
)

// pgServer is a PostgreSQL server of one test's own (testproc.Postgres),
// which the test may stop, start and restart.
type pgServer struct {
	*testproc.Postgres
	url string
}

// startPostgres starts a server on a free port of 127.0.0.1, stopped and
// removed when the test ends.
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	p := testproc.StartPostgres(t)
	return &pgServer{Postgres: p, url: p.URL}
}

// start starts the stopped server and waits until it accepts connections.
func (p *pgServer) start(t *testing.T) {
	t.Helper()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
}

// stop shuts the server down ("fast": sessions are ended, as in a
// failover or a maintenance restart).
func (p *pgServer) stop(t *testing.T) {
	t.Helper()
	if err := p.Stop("fast"); err != nil {
		t.Fatal(err)
	}
}

// restart is pg_ctl restart: stop (fast) and start with the same options.
func (p *pgServer) restart(t *testing.T) {
	t.Helper()
	if err := p.Restart("fast"); err != nil {
		t.Fatal(err)
	}
}

// queryInt runs a one-value query on the server.
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
