package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a run leaves goroutines behind: producers,
// samplers, progress reporters and Work must all have returned.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
