package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/spoolq/spool/bench/peers"
	"github.com/spoolq/spool/internal/bench"
)

// errUsage marks a usage error (exit status 2); the message was printed.
var errUsage = errors.New("usage error")

func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "peers:", err)
		return 1
	}
}

// run is the whole program: args without the program name.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "compare":
			return compare(args[1:], stdout, stderr)
		case "table":
			return table(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: peers --system asynq|river|spool [flags]
       peers compare SPOOL.json PEER.json...
       peers table REPORT.json...

Runs the scenarios of 'spool bench' against one queue system (already
running) and prints its report; --json saves it for 'peers compare' or
'spool bench --compare'. 'peers table' prints the medians of several
reports as one Markdown table.

`)
		fs.PrintDefaults()
	}
	var (
		system    = fs.String("system", "", "system under test: asynq, river or spool")
		redisAddr = fs.String("redis", "127.0.0.1:6379", "asynq: Redis address host:port")
		redisPID  = fs.Int("redis-pid", 0, "asynq: PID of the Redis server, for its memory figures")
		checkIvl  = fs.Duration("asynq-check-interval", 0, "asynq: TaskCheckInterval of the servers (0: asynq's default, 1s)")
		pgURL     = fs.String("pg", "", "river: PostgreSQL URL")
		cooldown  = fs.Duration("river-fetch-cooldown", 0, "river: FetchCooldown (0: River's default, 100ms)")
		pollIvl   = fs.Duration("river-fetch-poll-interval", 0, "river: FetchPollInterval (0: River's default, 1s)")
		spoolURL  = fs.String("spool-url", "", "spool: base URL of a running spool serve")
		spoolPID  = fs.Int("spool-pid", 0, "spool: PID of that server, for its memory figures")
		spoolName = fs.String("spool-name", "", "spool: name in the report (default spool)")
		spoolDur  = fs.String("spool-durability", "", "spool: durability in the report (default: the embedded store's)")
		jsonOut   = fs.String("json", "", "also write the report as JSON to this file")
		quick     = fs.Bool("quick", false, "tiny sizes that check the harness works (figures mean little)")
		scenarios = fs.String("scenarios", "", "comma-separated scenarios to run (default all: "+strings.Join(bench.Scenarios, ",")+")")
		o         bench.Options
	)
	fs.IntVar(&o.Runs, "runs", 0, "runs per scenario (default 3)")
	fs.IntVar(&o.Producers, "producers", 0, "enqueue_single: concurrent producers (default 8)")
	fs.IntVar(&o.Count, "count", 0, "jobs per run of the enqueue and process scenarios (default 10000)")
	fs.IntVar(&o.BatchSize, "batch", 0, "enqueue_batch: jobs per batch (default 100)")
	fs.IntVar(&o.Workers, "workers", 0, "process: worker goroutines (default 32)")
	fs.IntVar(&o.Rate, "rate", 0, "latency: offered jobs per second (default 1000)")
	fs.DurationVar(&o.Duration, "duration", 0, "latency and backpressure: length of a run (default 10s)")
	fs.Int64Var(&o.MaxDepth, "max-depth", 0, "backpressure: the queue's max_depth (default 1000)")
	fs.IntVar(&o.PayloadSize, "payload", 0, "bytes per payload (default 100)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "peers: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	if *quick {
		o = o.FillFrom(bench.QuickOptions())
	}
	if *scenarios != "" {
		o.Scenarios = strings.Split(*scenarios, ",")
	}

	var target bench.Target
	var err error
	switch *system {
	case "asynq":
		target, err = peers.NewAsynq(ctx, peers.AsynqConfig{
			Addr: *redisAddr, ServerPID: *redisPID, TaskCheckInterval: *checkIvl,
		})
	case "river":
		target, err = peers.NewRiver(ctx, peers.RiverConfig{
			URL: *pgURL, FetchCooldown: *cooldown, FetchPollInterval: *pollIvl,
		})
	case "spool":
		target, err = bench.NewSpoolTarget(bench.SpoolConfig{
			URL: *spoolURL, Name: *spoolName, Durability: *spoolDur, PID: *spoolPID,
		})
	default:
		fmt.Fprintf(stderr, "peers: --system must be asynq, river or spool, not %q\n", *system)
		return errUsage
	}
	if err != nil {
		return err
	}
	defer target.Close()

	fmt.Fprintf(stderr, "peers: running against %s (%s)\n", target.Name(), target.Durability())
	o = o.FillFrom(bench.DefaultOptions())
	bar := bench.NewProgressBar(stderr, "peers", o.Runs)
	o.Progress = bar.Update
	report, runErr := bench.Run(ctx, target, o)
	bar.Finish()
	if report == nil {
		return runErr
	}
	if err := bench.WriteText(stdout, report); err != nil {
		return err
	}
	if *jsonOut != "" {
		if err := bench.WriteJSONFile(*jsonOut, report); err != nil {
			return err
		}
	}
	return runErr
}

// compare prints bench.Compare of the first report against the others.
func compare(args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: peers compare SPOOL.json PEER.json...")
		return errUsage
	}
	reports, err := bench.ReadReportFiles(args...)
	if err != nil {
		return err
	}
	return bench.Compare(stdout, reports[0], reports[1:]...)
}
