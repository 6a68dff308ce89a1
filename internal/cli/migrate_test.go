package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestMigrateUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"NoStore", nil, []string{"migrate"}, "--store (or SPOOL_STORE) must name"},
		{"NotPostgres", nil, []string{"migrate", "--store", "mysql://db/x"}, "is not a PostgreSQL URL"},
		{"NotPostgresFromEnv", map[string]string{EnvStore: "./data"}, []string{"migrate"}, "is not a PostgreSQL URL"},
		{"ServeNotPostgres", nil, []string{"serve", "--store", "sqlite:x"}, "is not a PostgreSQL URL"},
		{"PasswordHidden", nil, []string{"migrate", "--store", "mysql://u:hunter2@db/x"}, "xxxxx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runEnv(t, tc.vars, "", tc.args...)
			require.Error(t, r.err)
			require.Equal(t, 2, exitCode(r.err), r.err.Error())
			require.Contains(t, r.err.Error(), tc.want)
			require.NotContains(t, r.err.Error(), "hunter2")
		})
	}
}

// TestMigrate runs `spool migrate` against the PostgreSQL of
// SPOOL_TEST_POSTGRES_URL (scripts/with-postgres), on a schema of its own
// named by the URL's search_path.
func TestMigrate(t *testing.T) {
	t.Parallel()
	base := os.Getenv("SPOOL_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SPOOL_TEST_POSTGRES_URL is not set and CI=true: run the tests under scripts/with-postgres")
		}
		t.Skip("SPOOL_TEST_POSTGRES_URL is not set; scripts/with-postgres starts a throwaway PostgreSQL")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "cli_" + hex.EncodeToString(b[:])
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		require.NoError(t, err)
	})

	r := runEnv(t, nil, "", "migrate", "--store", u.String())
	require.NoError(t, r.err, r.stderr)
	require.Regexp(t, `^schema `+schema+` migrated from version 0 to [1-9][0-9]*\n$`, r.stdout)
	r = runEnv(t, map[string]string{EnvStore: u.String()}, "", "migrate")
	require.NoError(t, r.err, r.stderr)
	require.True(t, strings.HasPrefix(r.stdout, "schema "+schema+" is up to date"), r.stdout)
}
