package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/testpki"
	"github.com/spoolq/spool/internal/testproc"
	"github.com/spoolq/spool/server"
)

// The first admin key is made offline in the data directory; the server
// then needs keys, and the CLI manages them over HTTP with --api-key or
// SPOOL_API_KEY; spool work sends its key.
func TestKeysCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := runEnv(t, nil, "", "keys", "create", "--name", "admin", "--role", "admin", "--data", dir, "--json")
	require.NoError(t, r.err, r.stderr)
	var admin spool.CreatedKey
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &admin))
	require.NotEmpty(t, admin.Secret)
	require.Equal(t, []string{"admin"}, admin.Roles)

	r = runEnv(t, nil, "", "keys", "create", "--name", "x", "--role", "root", "--data", dir)
	require.Equal(t, 2, exitCode(r.err), "a bad role is a usage error")

	srv, err := server.New(context.Background(), server.Config{DataDir: dir})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		require.NoError(t, srv.Close())
	})
	url := ts.URL
	as := func(secret string, args ...string) result {
		return runEnv(t, map[string]string{EnvServer: url, EnvAPIKey: secret}, "", args...)
	}

	r = as("", "queues")
	require.Error(t, r.err)
	require.Contains(t, r.err.Error(), EnvAPIKey, "the error says how to send a key")
	require.ErrorIs(t, r.err, spool.ErrUnauthorized)

	r = as(admin.Secret, "keys", "create", "--name", "reports", "--role", "worker", "--queues", "reports.*", "--json")
	require.NoError(t, r.err, r.stderr)
	var worker spool.CreatedKey
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &worker))
	require.Equal(t, []string{"reports.*"}, worker.Queues)

	r = as(admin.Secret, "keys", "ls")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, admin.ID)
	require.Contains(t, r.stdout, worker.ID)
	require.NotContains(t, r.stdout, admin.Secret)
	require.NotContains(t, r.stdout, worker.Secret)

	r = as(worker.Secret, "push", "reports.daily", "t", "{}")
	require.ErrorIs(t, r.err, spool.ErrForbidden, "a worker key may not enqueue")

	// spool work runs jobs with its key (--api-key).
	c, err := client.New(url, client.WithAPIKey(admin.Secret))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	j, err := c.Push(context.Background(), "reports.daily", "t", map[string]int{"n": 1})
	require.NoError(t, err)
	stop := startCLI(t, url, "work", "--api-key", worker.Secret, "--queue", "reports.daily", "--exec", "cat")
	done := waitJob(t, c, j.ID)
	require.Equal(t, spool.StateSucceeded, done.State)
	require.NoError(t, stop().err)

	r = as(admin.Secret, "keys", "revoke", worker.ID)
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "revoked")
	r = as(worker.Secret, "queues")
	require.ErrorIs(t, r.err, spool.ErrUnauthorized)

	r = as(admin.Secret, "audit")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "POST /v1/keys")
	require.Contains(t, r.stdout, "DELETE /v1/keys/{key}")
	require.Contains(t, r.stdout, admin.ID)
}

// The CLI over TLS: --server https://... with --ca-file (or SPOOL_CA_FILE).
func TestCLIOverTLS(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	srv, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), TLSCert: p.CertFile, TLSKey: p.KeyFile})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, srv.Close())
	})
	url := "https://" + ln.Addr().String()

	r := runEnv(t, map[string]string{EnvServer: url, EnvCAFile: p.CAFile}, "", "push", "tls", "t", "{}")
	require.NoError(t, r.err, r.stderr)
	r = runEnv(t, nil, "", "--server", url, "--ca-file", p.CAFile, "queues")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "tls")
	r = runEnv(t, nil, "", "--server", url, "--ca-file", p.OtherCA, "queues")
	require.Error(t, r.err, "a server whose CA is not trusted is refused")
	r = runEnv(t, nil, "", "--server", url, "--ca-file", "/nonexistent.pem", "queues")
	require.Equal(t, 2, exitCode(r.err))
}

// spool keys create --store: the first key of a PostgreSQL cluster, made
// while a node runs; the node accepts it within a second or two.
func TestKeysCreateOfflinePostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv("SPOOL_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SPOOL_TEST_POSTGRES_URL is not set and CI=true: run the tests under scripts/with-postgres")
		}
		t.Skip("SPOOL_TEST_POSTGRES_URL is not set; scripts/with-postgres starts a throwaway PostgreSQL")
	}
	url, _ := testproc.FreshSchema(t, base, "cli_keys_")
	srv, err := server.New(context.Background(), server.Config{Store: url})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		require.NoError(t, srv.Close())
	})

	r := runEnv(t, nil, "", "keys", "create", "--name", "admin", "--role", "admin", "--store", url, "--json")
	require.NoError(t, r.err, r.stderr)
	var admin spool.CreatedKey
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &admin))
	require.NotContains(t, r.stderr, admin.Secret)

	deadline := time.Now().Add(5 * time.Second)
	for {
		if r = runEnv(t, map[string]string{EnvServer: ts.URL}, "", "queues"); errors.Is(r.err, spool.ErrUnauthorized) {
			break
		}
		require.True(t, time.Now().Before(deadline), "the node never required a key: %v", r.err)
		time.Sleep(20 * time.Millisecond)
	}
	r = runEnv(t, map[string]string{EnvServer: ts.URL, EnvAPIKey: admin.Secret}, "", "keys", "ls")
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, admin.ID)
}
