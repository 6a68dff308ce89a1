package server_test

import (
	"os"
	"testing"

	"github.com/spoolq/spool/internal/testproc"
	"github.com/spoolq/spool/server"
)

// eachStore runs fn on the embedded store and on PostgreSQL (a fresh
// schema of SPOOL_TEST_POSTGRES_URL), in parallel subtests; fn passes
// store to newTestServer. Without the URL the PostgreSQL run skips, but
// under CI=true it fails.
func eachStore(t *testing.T, fn func(t *testing.T, store func(*server.Config))) {
	t.Run("Embedded", func(t *testing.T) {
		t.Parallel()
		fn(t, func(*server.Config) {})
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		base := os.Getenv("SPOOL_TEST_POSTGRES_URL")
		if base == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("SPOOL_TEST_POSTGRES_URL is not set, and CI=true requires the PostgreSQL run (scripts/with-postgres sets it)")
			}
			t.Skip("SPOOL_TEST_POSTGRES_URL is not set; scripts/with-postgres starts a throwaway PostgreSQL")
		}
		url, _ := testproc.FreshSchema(t, base, "server_")
		fn(t, func(c *server.Config) { c.Store = url })
	})
}
