// Command reports is a small web application built on Spool, the seed use
// case: a user asks for a report, the application enqueues a job and
// answers 202 Accepted with a status link at once, a worker builds the
// report in the background and reports its progress, and the page shows
// the progress until the report is done.
//
// Run a Spool server, then this program:
//
//	go run ./cmd/spool serve
//	go run ./examples/reports            # web app on :8080 and a worker, in one process
//
// or the two halves apart (any number of workers, on any machines):
//
//	go run ./examples/reports web -addr 127.0.0.1:8080
//	go run ./examples/reports worker -concurrency 4
//
// Flags: -server (default $SPOOL_SERVER or http://127.0.0.1:7077), -addr,
// -queue, -concurrency, -step (how long one month of a report takes).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spoolq/spool/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "reports:", err)
		os.Exit(1)
	}
}

// config is what the command line sets.
type config struct {
	mode        string // all, web or worker
	server      string
	addr        string
	queue       string
	concurrency int
	step        time.Duration
}

func parse(args []string, stderr io.Writer) (config, error) {
	cfg := config{mode: "all"}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cfg.mode, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("reports", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := os.Getenv("SPOOL_SERVER")
	if server == "" {
		server = "http://127.0.0.1:7077"
	}
	fs.StringVar(&cfg.server, "server", server, "the Spool server")
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "where the web app listens (web and all)")
	fs.StringVar(&cfg.queue, "queue", "reports", "the queue of report jobs")
	fs.IntVar(&cfg.concurrency, "concurrency", 2, "reports built at once (worker and all)")
	fs.DurationVar(&cfg.step, "step", 400*time.Millisecond, "how long one month of a report takes to build")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: reports [all|web|worker] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch cfg.mode {
	case "all", "web", "worker":
	default:
		return cfg, fmt.Errorf("unknown mode %q: use all, web or worker", cfg.mode)
	}
	return cfg, nil
}

// run runs the web app, the worker or both until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parse(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	c, err := client.New(cfg.server, client.WithUserAgent("spool-example-reports"))
	if err != nil {
		return err
	}
	defer c.Close()

	// The parts run until ctx is done; one failing stops the others.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	parts := 0
	start := func(f func() error) {
		parts++
		go func() {
			err := f()
			cancel()
			errc <- err
		}()
	}
	if cfg.mode != "web" {
		w, err := newWorker(c, cfg, log, &Builder{Step: cfg.step})
		if err != nil {
			return err
		}
		start(func() error { return w.Run(ctx) })
	}
	if cfg.mode != "worker" {
		app := &App{c: c, queue: cfg.queue, log: log}
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.addr)
		if err != nil {
			cancel()
			return errors.Join(err, waitParts(errc, parts))
		}
		log.Info("reports web app listening", "url", "http://"+ln.Addr().String(), "spool", cfg.server)
		start(func() error { return serve(ctx, ln, app.Handler()) })
	}
	return waitParts(errc, parts)
}

// waitParts collects the errors of n parts.
func waitParts(errc <-chan error, n int) error {
	var errs []error
	for range n {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func newWorker(c *client.Client, cfg config, log *slog.Logger, b *Builder) (*client.Worker, error) {
	w, err := client.NewWorker(c, client.WorkerOptions{
		Queues:        []string{cfg.queue},
		Concurrency:   cfg.concurrency,
		ShutdownGrace: 10 * time.Second,
		Logger:        log,
		// Progress shows on the page within a fraction of a second.
		ProgressInterval: 200 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	w.Handle(JobType, b.Handle)
	return w, nil
}

// serve serves h on ln until ctx is done, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}
