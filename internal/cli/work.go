package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// Bounds of what `spool work` keeps of a command's output.
const (
	// maxStdout bounds the result: the server's default payload limit.
	maxStdout = 1 << 20
	// stderrTail is how much of the end of stderr a failure reports.
	stderrTail = 4 << 10
	// waitDelay bounds how long a command's output pipes may stay open
	// after it exited (a background child holding them).
	waitDelay = time.Second
)

func newWorkCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "work --queue Q [--queue Q2] --exec 'COMMAND ARGS'",
		Short: "Run jobs with a shell command: a worker in any language",
		Long: `Lease jobs from the queues (the first --queue first) and run COMMAND for
each, with sh -c, up to --concurrency at a time:

  stdin                 the job's payload (JSON; empty if none)
  SPOOL_JOB_ID          the job's id
  SPOOL_JOB_TYPE        its type
  SPOOL_JOB_QUEUE       its queue
  SPOOL_JOB_ATTEMPT     the attempt, from 1
  SPOOL_JOB_MAX_ATTEMPTS
  file descriptor 3     progress: each line "PERCENT [MESSAGE]" written to it
                        (echo "40 resizing" >&3) is reported with the next
                        heartbeat, and shows in 'spool job ID'
  exit status 0         completes the job; stdout is the result (JSON if it
                        parses as JSON, else a JSON string; at most 1 MiB)
  other exit status     fails the attempt with the last 4 KiB of stderr; the
                        job is retried after its backoff or goes dead

The command runs in its own process group. When the job's timeout (or
--timeout, for jobs without one) passes, or the job is cancelled, or its
lease is lost, the whole group is killed (SIGKILL); so are processes the
command leaves behind when it exits.

Heartbeats keep each job's lease (--lease) while its command runs. SIGINT or
SIGTERM stops gracefully: no new jobs, running commands get --grace to
finish, the rest are killed and their jobs handed back to the queue at once,
their attempt not counted.`,
		Example: `  spool work --queue images --concurrency 4 --exec 'python3 resize.py'
  spool work --queue reports --queue reports-low --exec './build-report --stdin' --timeout 10m
  spool work --queue q --exec 'jq .to | xargs -n1 ./send-mail'`,
		Args: argsBetween(0, 0, "no arguments (the command goes in --exec)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return work(cmd, e)
		},
	}
	f := cmd.Flags()
	f.StringArray("queue", nil, "a queue to take jobs from (repeat for more, in priority order)")
	f.String("exec", "", "the command to run for each job, with sh -c")
	f.Int("concurrency", 1, "how many commands run at once")
	f.Duration("timeout", 0, "timeout of jobs enqueued without one (default: none)")
	f.Duration("lease", client.DefaultLease, "lease duration; heartbeats renew it while a command runs")
	f.Duration("grace", client.DefaultShutdownGrace, "on SIGINT/SIGTERM, how long running commands may take to finish")
	f.String("name", "", "worker name shown on its jobs (default host:pid)")
	f.String("log-level", "", "log level: debug, info, warn or error (env "+EnvLogLevel+", default info)")
	f.String("log-format", "", "log format: text or json (env "+EnvLogFormat+", default text)")
	return cmd
}

func work(cmd *cobra.Command, e env) error {
	f := cmd.Flags()
	queues, _ := f.GetStringArray("queue")
	if len(queues) == 0 {
		return usagef("--queue is required: name the queue(s) to take jobs from")
	}
	for _, q := range queues {
		if err := spool.ValidateQueueName(q); err != nil {
			return usagef("--queue: %v", err)
		}
	}
	command, _ := f.GetString("exec")
	if command == "" {
		return usagef("--exec is required: the command to run for each job")
	}
	conc, _ := f.GetInt("concurrency")
	if conc < 1 {
		return usagef("--concurrency must be at least 1")
	}
	timeout, _ := f.GetDuration("timeout")
	lease, _ := f.GetDuration("lease")
	grace, _ := f.GetDuration("grace")
	if timeout < 0 || grace < 0 {
		return usagef("--timeout and --grace must not be negative")
	}
	if lease < spool.MinLeaseDuration || lease > spool.MaxLeaseDuration {
		return usagef("--lease must be between %s and %s", spool.MinLeaseDuration, spool.MaxLeaseDuration)
	}
	name, _ := f.GetString("name")
	log, err := newLogger(e.stderr,
		setting(cmd, e, "log-level", EnvLogLevel, "info"),
		setting(cmd, e, "log-format", EnvLogFormat, "text"))
	if err != nil {
		return err
	}
	return withClient(cmd, e, func(c *client.Client) error {
		w, err := client.NewWorker(c, client.WorkerOptions{
			Queues:            queues,
			Concurrency:       conc,
			Lease:             lease,
			DefaultJobTimeout: timeout,
			ShutdownGrace:     max(grace, time.Nanosecond),
			Name:              name,
			Logger:            log,
		})
		if err != nil {
			return usagef("%v", err)
		}
		w.HandleDefault(execHandler(command, log))
		log.Info("working", "server", c.URL(), "queues", queues, "concurrency", conc, "exec", command)
		return w.Run(cmd.Context())
	})
}

// execHandler runs command with sh -c for each job (see `spool work`).
func execHandler(command string, log *slog.Logger) client.HandlerFunc {
	return func(ctx context.Context, job *client.Job) (any, error) {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return killGroup(cmd) }
		cmd.WaitDelay = waitDelay
		cmd.Stdin = bytes.NewReader(job.Payload)
		cmd.Env = append(os.Environ(),
			"SPOOL_JOB_ID="+job.ID,
			"SPOOL_JOB_TYPE="+job.Type,
			"SPOOL_JOB_QUEUE="+job.Queue,
			"SPOOL_JOB_ATTEMPT="+strconv.Itoa(job.Attempt),
			"SPOOL_JOB_MAX_ATTEMPTS="+strconv.Itoa(job.MaxAttempts),
		)
		stdout := &capped{max: maxStdout}
		stderr := &tail{max: stderrTail}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		progress, err := progressPipe(cmd, job)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		err = cmd.Start()
		progress.started()
		if err == nil {
			err = cmd.Wait()
		}
		if cmd.Process != nil {
			// Whatever the command left running goes with it.
			_ = killGroup(cmd)
		}
		progress.wait()
		log.Debug("command ended", "job_id", job.ID, "duration", time.Since(start), "error", err)
		if ctx.Err() != nil {
			if errors.Is(context.Cause(ctx), client.ErrJobTimeout) {
				return nil, errors.New("the command's process group was killed")
			}
			return nil, fmt.Errorf("%w; the command's process group was killed", context.Cause(ctx))
		}
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return nil, exitError(ee, stderr.String())
		case err != nil && !errors.Is(err, exec.ErrWaitDelay):
			return nil, fmt.Errorf("running %q: %w", command, err)
		case stdout.over:
			return nil, fmt.Errorf("the command wrote more than %d bytes on stdout, the most a result may hold", maxStdout)
		}
		return stdoutResult(stdout.Bytes()), nil
	}
}

// progress reads the progress lines a command writes to its file
// descriptor 3 and reports them on the job.
type progress struct {
	r, w *os.File
	done chan struct{}
}

// progressPipe gives cmd a pipe as its file descriptor 3 and starts
// reading it.
func progressPipe(cmd *exec.Cmd, job *client.Job) (*progress, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("making the progress pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{w}
	p := &progress{r: r, w: w, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 4096), 64<<10)
		for sc.Scan() {
			if pct, msg, ok := parseProgress(sc.Text()); ok {
				job.Progress(pct, msg)
			}
		}
		_, _ = io.Copy(io.Discard, r) // a line too long: drain the rest
	}()
	return p, nil
}

// started closes the parent's copy of the write end, once the command has
// its own (or failed to start), so the reader ends with the command.
func (p *progress) started() { _ = p.w.Close() }

// wait waits for the reader, once the command's process group is gone:
// at most waitDelay, should a process outside the group hold the pipe.
func (p *progress) wait() {
	_ = p.r.SetReadDeadline(time.Now().Add(waitDelay))
	<-p.done
	_ = p.r.Close()
}

// parseProgress reads a progress line: a percent (0 to 100), then
// optionally a message.
func parseProgress(line string) (float64, string, bool) {
	line = strings.TrimSpace(line)
	num, msg, _ := strings.Cut(line, " ")
	pct, err := strconv.ParseFloat(strings.TrimSuffix(num, "%"), 64)
	if err != nil || math.IsNaN(pct) {
		return 0, "", false
	}
	return pct, strings.TrimSpace(msg), true
}

// killGroup kills the process group of a command started with Setpgid.
func killGroup(cmd *exec.Cmd) error {
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// exitError describes a command that ended with a failure status.
func exitError(ee *exec.ExitError, stderr string) error {
	what := "exit status " + strconv.Itoa(ee.ExitCode())
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		what = "killed by signal " + ws.Signal().String()
	}
	stderr = string(bytes.TrimSpace([]byte(stderr)))
	if stderr == "" {
		return errors.New(what + " (nothing on stderr)")
	}
	return errors.New(what + ": " + stderr)
}

// stdoutResult is a command's stdout as a job result: the JSON value it
// holds, else a JSON string of it (without a final newline); nil if empty.
func stdoutResult(out []byte) json.RawMessage {
	trimmed := bytes.TrimSpace(out)
	if len(trimmed) == 0 {
		return nil
	}
	if json.Valid(trimmed) {
		return json.RawMessage(trimmed)
	}
	out = bytes.TrimSuffix(out, []byte("\n"))
	out = bytes.TrimSuffix(out, []byte("\r"))
	b, _ := json.Marshal(string(out)) // a string always marshals
	return b
}

// capped keeps the first max bytes written to it and notes any excess.
type capped struct {
	bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); len(p) > room {
		c.over = true
		c.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

// tail keeps the last max bytes written to it.
type tail struct {
	buf []byte
	max int
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		t.cut = true
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String is the tail, marked when earlier output was dropped, starting at
// a whole character.
func (t *tail) String() string {
	b := t.buf
	if !t.cut {
		return string(b)
	}
	for i := 0; i < len(b) && i < 4; i++ {
		if b[i]&0xC0 != 0x80 {
			b = b[i:]
			break
		}
	}
	return "..." + string(b)
}
