// Command peers runs the scenarios of `spool bench` (internal/bench)
// against a peer queue system, so its figures can be set beside Spool's:
//
//	peers --system asynq --redis 127.0.0.1:6379 --json asynq.json
//	peers --system river --pg postgres://user@127.0.0.1:5432/river --json river.json
//	peers --system spool --spool-url http://127.0.0.1:7077 --json spool.json
//	peers compare spool.json asynq.json river.json
//	peers table spool.json asynq.json river.json
//
// The size flags are those of `spool bench`. `peers compare` prints the
// ratio table of bench.Compare (what `spool bench --compare` prints);
// `peers table` the medians of several reports as one Markdown table.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}
