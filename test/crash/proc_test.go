package crash

import (
	"testing"
	"time"

	"github.com/spoolq/spool/internal/testproc"
)

// spoolBin is the spool binary built by TestMain.
var spoolBin string

func TestMain(m *testing.M) { testproc.Main(m, "crash", &spoolBin) }

// startServer runs `spool serve` on dataDir and a free port.
func startServer(t *testing.T, dataDir string) *testproc.Server {
	t.Helper()
	return testproc.Start(t, spoolBin, "spool serve", 20*time.Second, "--data", dataDir)
}
