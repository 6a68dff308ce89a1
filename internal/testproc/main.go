package testproc

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// Main is the TestMain of a package whose tests run the real binary: it
// builds cmd/spool into a temporary directory (not under -short, whose
// tests skip themselves), sets *bin to its path, runs the tests, removes
// the binary and exits with the tests' status. name labels the package in
// messages.
func Main(m *testing.M, name string, bin *string) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	path, cleanup, err := BuildSpool("spool-" + name + "-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s test: %v\n", name, err)
		os.Exit(1)
	}
	*bin = path
	code := m.Run()
	cleanup()
	os.Exit(code)
}
