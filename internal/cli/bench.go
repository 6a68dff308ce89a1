package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool/internal/bench"
)

func newBenchCmd(e env) *cobra.Command {
	d, q := bench.DefaultOptions(), bench.QuickOptions()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a Spool server: enqueue and processing throughput, latency, back pressure",
		Long: `Measure Spool with the scenarios below, each --runs times (the report shows
the median, min and max), every run on a fresh queue.

By default the bench starts a server of its own: this binary's 'serve' with
an embedded store in a temporary directory, on a free port of 127.0.0.1,
stopped (SIGTERM) and removed afterwards. --store runs that server on a
PostgreSQL store instead. --server URL measures a server already running
(the bench then leaves a few queues named bench-... behind; $` + EnvServer + `
is not used here).

Scenarios (--scenarios, comma-separated; default all):
  enqueue_single  --producers producers each enqueue one job at a time until
                  --count jobs were accepted: jobs/s, round trip p50/p99.
  enqueue_batch   ` + fmt.Sprint(bench.BatchProducers) + ` producers enqueue batches of --batch until --count:
                  jobs/s, batch round trip p50/p99.
  process         --count jobs are preloaded (not timed), then --workers
                  handlers run them: jobs/s until every job was handled
                  (the queue's pending count is then checked to reach 0).
  latency         a paced open-loop producer (many goroutines, so a slow
                  enqueue does not hold up the schedule) offers --rate jobs/s
                  for --duration to --workers handlers. End-to-end latency =
                  handler start - enqueue acknowledged (0 if the handler
                  started first): p50, p99, p99.9, max; enqueue p50/p99.
  backpressure    the queue is bounded to --max-depth and filled to it (not
                  timed); then --producers producers enqueue as fast as they
                  can for --duration against ` + fmt.Sprint(bench.BackpressureWorkers) + ` handlers that take
                  ` + bench.BackpressureJobTime.String() + ` per job (a slow drain, so the queue stays full): accepted/s,
                  refused (queue full)/s, refusal round trip p50/p99, peak
                  pending; when the bench started the server, its RSS (VmRSS,
                  every 100ms) at start, peak and end.
  delayed         a paced producer offers --rate jobs/s for --duration, each
                  delayed by ` + bench.DelayedBy.String() + `, to --workers handlers. Lateness =
                  handler start - (enqueue sent + delay), which errs late by
                  at most one enqueue round trip: p50, p99, max.

Every job carries the same payload: a JSON string of --payload bytes
(quotes included) holding its sequence number; handlers do nothing.
Percentiles are exact (nearest rank over every sample). Producers send each
enqueue once: a full queue is answered, not retried. Workers are the SDK's
client.Worker with default settings.

--json and --csv print the report in those forms; --compare a.json,b.json
then prints (to stdout, or stderr with --json/--csv) a table of this run
against reports saved before, e.g. by the peers' benchmark: ratio > 1 means
Spool did better (spool/peer for higher-is-better metrics, peer/spool for
lower-is-better ones).

--quick: ` + fmt.Sprintf("%d jobs, %s runs, rate %d, max depth %d, one run each", q.Count, q.Duration, q.Rate, q.MaxDepth) + `: checks the
bench works; its figures mean little. The machine's other load shows in every
figure: measure on a quiet machine.`,
		Example: `  spool bench                               # all scenarios, own server
  spool bench --quick
  spool bench --scenarios latency --rate 2000 --duration 30s
  spool bench --json > spool.json
  spool bench --compare asynq.json,river.json`,
		Args: argsBetween(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd, e)
		},
	}
	f := cmd.Flags()
	f.StringSlice("scenarios", nil, "scenarios to run, comma-separated (default all: "+strings.Join(bench.Scenarios, ",")+")")
	f.Int("runs", d.Runs, "runs per scenario")
	f.Int("producers", d.Producers, "concurrent producers (enqueue_single, backpressure)")
	f.Int("count", d.Count, "jobs per run (enqueue_single, enqueue_batch, process)")
	f.Int("batch", d.BatchSize, "jobs per batch (enqueue_batch, process preload)")
	f.Int("workers", d.Workers, "concurrent handlers (process, latency)")
	f.Int("rate", d.Rate, "offered jobs per second (latency, delayed)")
	f.Duration("duration", d.Duration, "length of a run (latency, backpressure, delayed)")
	f.Int64("max-depth", d.MaxDepth, "the queue's max_depth (backpressure)")
	f.Int("payload", d.PayloadSize, "payload bytes per job")
	f.Bool("json", false, "print the report as JSON")
	f.Bool("csv", false, "print the report as CSV")
	f.Bool("quick", false, "tiny sizes: check the bench works")
	f.StringSlice("compare", nil, "JSON reports of other systems to compare this run with (comma-separated or repeated)")
	f.String("store", "", "PostgreSQL URL for the server the bench starts (default: embedded store in a temporary directory)")
	return cmd
}

func runBench(cmd *cobra.Command, e env) error {
	f := cmd.Flags()
	o, err := benchOptions(cmd)
	if err != nil {
		return err
	}
	asJSON, _ := f.GetBool("json")
	asCSV, _ := f.GetBool("csv")
	if asJSON && asCSV {
		return usagef("--json and --csv exclude each other")
	}
	files, _ := f.GetStringSlice("compare")
	peers, err := bench.ReadReportFiles(files...)
	if err != nil {
		return usagef("--compare: %v", err)
	}
	storeURL, _ := f.GetString("store")
	serverURL := ""
	if sf := cmd.Flags().Lookup("server"); sf != nil && sf.Changed {
		serverURL = sf.Value.String()
		if storeURL != "" {
			return usagef("--store is for the server the bench starts; with --server the bench starts none")
		}
	}
	ctx := cmd.Context()

	cfg := bench.SpoolConfig{URL: serverURL, Name: "spool"}
	if serverURL == "" {
		srv, err := startBenchServer(ctx, storeURL)
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.stop(); err != nil {
				fmt.Fprintf(e.stderr, "spool bench: %v\n", err)
			}
		}()
		cfg.URL, cfg.PID, cfg.Name = srv.url, srv.pid(), "spool-embedded"
		if storeURL != "" {
			cfg.Name, cfg.Durability = "spool-postgres", "PostgreSQL commit before ack"
		}
		fmt.Fprintf(e.stderr, "spool bench: started %s server at %s (pid %d)\n", cfg.Name, srv.url, cfg.PID)
	}
	t, err := bench.NewSpoolTarget(cfg)
	if err != nil {
		return usagef("--server: %v", err)
	}
	defer t.Close()

	bar := bench.NewProgressBar(e.stderr, "spool bench", o.Runs)
	o.Progress = bar.Update
	rep, runErr := bench.Run(ctx, t, o)
	bar.Finish()
	if rep == nil {
		return runErr
	}
	out := e.stdout
	switch {
	case asJSON:
		err = bench.WriteJSON(out, rep)
	case asCSV:
		err = bench.WriteCSV(out, rep)
	default:
		err = bench.WriteText(out, rep)
	}
	if err == nil && len(peers) > 0 {
		w := out
		if asJSON || asCSV {
			w = e.stderr
		} else {
			fmt.Fprintln(w)
		}
		err = bench.Compare(w, rep, peers...)
	}
	return errors.Join(runErr, err)
}

// benchOptions builds the bench options from the defaults (or --quick's)
// and the flags given.
func benchOptions(cmd *cobra.Command) (bench.Options, error) {
	f := cmd.Flags()
	o := bench.DefaultOptions()
	if quick, _ := f.GetBool("quick"); quick {
		o = bench.QuickOptions()
	}
	ints := map[string]*int{
		"runs": &o.Runs, "producers": &o.Producers, "count": &o.Count, "batch": &o.BatchSize,
		"workers": &o.Workers, "rate": &o.Rate, "payload": &o.PayloadSize,
	}
	for name, p := range ints {
		if f.Changed(name) {
			v, _ := f.GetInt(name)
			if v <= 0 {
				return o, usagef("--%s must be positive", name)
			}
			*p = v
		}
	}
	if f.Changed("duration") {
		o.Duration, _ = f.GetDuration("duration")
	}
	if f.Changed("max-depth") {
		o.MaxDepth, _ = f.GetInt64("max-depth")
	}
	if f.Changed("scenarios") {
		o.Scenarios, _ = f.GetStringSlice("scenarios")
	}
	if err := o.Validate(); err != nil {
		return o, usagef("%v", err)
	}
	return o, nil
}

// benchServer is the `spool serve` child process the bench starts.
type benchServer struct {
	cmd  *exec.Cmd
	dir  string
	url  string
	logs *tailBuffer
	done chan struct{} // closed once the process exited
	err  error         // its exit error, once done is closed
}

// startBenchServer runs this binary's `serve` on a free port of 127.0.0.1
// with its data in a new temporary directory (or on storeURL), and waits
// until its /readyz answers 200.
func startBenchServer(ctx context.Context, storeURL string) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to start a server: %w", err)
	}
	dir, err := os.MkdirTemp("", "spool-bench-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"serve", "--data", dir, "--addr", addr, "--log-level", "warn"}
	if storeURL != "" {
		args = append(args, "--store", storeURL)
	}
	s := &benchServer{dir: dir, url: "http://" + addr, logs: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	s.cmd = exec.Command(exe, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	// The flags say where the store is, the rest takes its defaults: no
	// setting of serve comes from the environment.
	var names []string
	for _, st := range serveSettings {
		names = append(names, envOf(st.flag))
	}
	s.cmd.Env = withoutEnv(os.Environ(), names...)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s serve: %w", exe, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.awaitReady(ctx, 30*time.Second); err != nil {
		_ = s.stop()
		return nil, err
	}
	return s, nil
}

func (s *benchServer) pid() int { return s.cmd.Process.Pid }

// awaitReady polls /readyz until it answers 200.
func (s *benchServer) awaitReady(ctx context.Context, timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("the bench's server exited before it was ready (%v):\n%s", s.err, s.logs)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the bench's server at %s was not ready within %s:\n%s", s.url, timeout, s.logs)
		}
	}
}

// stop sends SIGTERM, waits for the server to exit (killing it after 30s)
// and removes its data directory.
func (s *benchServer) stop() error {
	defer os.RemoveAll(s.dir)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("the bench's server did not stop within 30s of SIGTERM; killed it")
	}
	var ee *exec.ExitError
	if s.err != nil && !(errors.As(s.err, &ee) && ee.Exited() && ee.ExitCode() == 0) {
		// A server stopped by a signal the terminal sent (Ctrl-C) also
		// lands here; say what it logged.
		return fmt.Errorf("the bench's server exited with %v:\n%s", s.err, s.logs)
	}
	return nil
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

func withoutEnv(environ []string, names ...string) []string {
	out := environ[:0:0]
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
