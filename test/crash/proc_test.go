package crash

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/spoolq/spool/internal/testproc"
)

// spoolBin is the spool binary built by TestMain.
var spoolBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	start := time.Now()
	bin, cleanup, err := testproc.BuildSpool("spool-crash-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash test:", err)
		os.Exit(1)
	}
	spoolBin = bin
	if testing.Verbose() {
		fmt.Printf("crash test: built %s in %s\n", spoolBin, time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// startServer runs `spool serve` on dataDir and a free port.
func startServer(t *testing.T, dataDir string) *testproc.Server {
	t.Helper()
	return testproc.Start(t, spoolBin, "spool serve", 20*time.Second, "--data", dataDir)
}
