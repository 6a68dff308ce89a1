package flow

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/testproc"
)

var spoolBin string

func TestMain(m *testing.M) { testproc.Main(m, "flow", &spoolBin) }

// cluster is the nodes of one test: clients of each, in order.
type cluster struct {
	name    string
	clients []*client.Client
}

// eachStore runs fn on one embedded node and, with a PostgreSQL server,
// on three nodes sharing a fresh schema.
func eachStore(t *testing.T, fn func(t *testing.T, c cluster)) {
	if testing.Short() {
		t.Skip("runs the spool binary; skipped with -short")
	}
	t.Run("Embedded", func(t *testing.T) {
		t.Parallel()
		n := testproc.Start(t, spoolBin, "embedded", 30*time.Second, "--data", t.TempDir())
		fn(t, cluster{name: "embedded", clients: []*client.Client{newClient(t, n)}})
	})
	t.Run("PostgresThreeNodes", func(t *testing.T) {
		t.Parallel()
		base := os.Getenv("SPOOL_TEST_POSTGRES_URL")
		if base == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("SPOOL_TEST_POSTGRES_URL is not set and CI=true: the PostgreSQL flows must run (wrap the command in scripts/with-postgres)")
			}
			t.Skip("SPOOL_TEST_POSTGRES_URL is not set; scripts/with-postgres starts a throwaway PostgreSQL")
		}
		storeURL := freshSchema(t, base)
		// The first node migrates the schema; the others find it done.
		first := testproc.Start(t, spoolBin, "n0", 30*time.Second, "--store", storeURL)
		c := cluster{name: "postgres", clients: []*client.Client{newClient(t, first)}}
		for i := 1; i < 3; i++ {
			n := testproc.Start(t, spoolBin, fmt.Sprintf("n%d", i), 30*time.Second, "--store", storeURL)
			c.clients = append(c.clients, newClient(t, n))
		}
		fn(t, c)
	})
}

func newClient(t *testing.T, n *testproc.Server) *client.Client {
	t.Helper()
	c, err := client.New(n.URL(), client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// freshSchema returns base with search_path set to a new schema, dropped
// when the test ends.
func freshSchema(t *testing.T, base string) string {
	u, _ := testproc.FreshSchema(t, base, "flow_")
	return u
}
