// Package crash holds Spool's crash test: it builds the real spool binary,
// runs `spool serve` under load from concurrent producers and a worker,
// kills it with SIGKILL at a random moment, restarts it on the same data
// directory, and checks the durability contract over the recorded history:
// every acknowledged job exists, jobs left active are delivered again once
// their leases lapse (or at once, if the kill came before their lease was
// synced), jobs whose completion was acknowledged stay
// succeeded, and every job ends succeeded — nothing lost, nothing stuck.
//
// It runs with `go test ./...` and is skipped under -short. Set
// SPOOL_CRASH_SEED to replay the kill moments of a logged run.
package crash
