package cli

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a command leaves goroutines behind: serve
// must stop its server, and every command must release its client.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
