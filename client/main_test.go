package client_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind (a client
// call or long-poll that never returns, a connection never closed).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
