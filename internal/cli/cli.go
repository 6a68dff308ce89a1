// Package cli is the spool command line: `spool serve` runs the server;
// push, job, wait, jobs, dead, queues, queue, cancel, retry and topic drive a server
// through the Go SDK, and `spool work` runs jobs with any command. Run is
// the whole program minus the process: cmd/spool only wires it to os.Args,
// the standard streams, signals and the exit code, so every command is
// tested in-process.
package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/server"
)

// Defaults of the settings that flags and the environment can change.
const (
	DefaultServer  = "http://127.0.0.1:7077"
	DefaultAddr    = server.DefaultAddr
	DefaultDataDir = server.DefaultDataDir
)

// Environment variables read when the matching flag is not given.
const (
	EnvServer    = "SPOOL_SERVER"
	EnvAddr      = "SPOOL_ADDR"
	EnvData      = "SPOOL_DATA"
	EnvLogLevel  = "SPOOL_LOG_LEVEL"
	EnvLogFormat = "SPOOL_LOG_FORMAT"
)

// Run runs the spool command line with args (without the program name),
// writing to stdout and stderr and reading os.Stdin and the environment.
// It returns nil on success, a *UsageError when the command line is wrong
// (exit status 2), and any other error when the command failed (1). Run
// does not print the error it returns: Report does.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, env{stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv})
}

// env is what a command may touch of the outside world.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// UsageError is a command line the program cannot act on: an unknown
// command or flag, a missing argument, a value that does not parse.
// Nothing was sent to a server.
type UsageError struct {
	// Cmd is the command path, e.g. "spool push".
	Cmd string
	Err error
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// usagef returns a *UsageError; run fills in the command.
func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Report prints err to stderr the way the spool command does, and returns
// the process exit status: 0 for nil, 2 for a *UsageError, 1 otherwise.
func Report(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "spool: %v\n", err)
	var ue *UsageError
	if errors.As(err, &ue) {
		cmd := ue.Cmd
		if cmd == "" {
			cmd = "spool"
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd)
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, e env) error {
	started := false // true once a command's own code runs
	root := newRoot(e, &started)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	path := "spool"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		if ue.Cmd == "" {
			ue.Cmd = path
		}
		return err
	}
	if !started {
		// Cobra refused the command line (unknown command or flag, wrong
		// number of arguments) before any command ran.
		return &UsageError{Cmd: path, Err: err}
	}
	return err
}

func newRoot(e env, started *bool) *cobra.Command {
	root := &cobra.Command{
		Use:   "spool",
		Short: "Spool is a durable task queue server",
		Long: `Spool is a durable task queue server.

'spool serve' runs the server; the other commands talk to a running server
(--server, or $SPOOL_SERVER, default ` + DefaultServer + `).`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			*started = true
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.PersistentFlags().String("server", "", "server URL (env "+EnvServer+", default "+DefaultServer+")")
	root.PersistentFlags().String("api-key", "", "API key secret sent as Authorization: Bearer (prefer env "+EnvAPIKey+": flags show in process listings)")
	root.PersistentFlags().String("ca-file", "", "PEM file of the certificate authority of a server with TLS (https://) (env "+EnvCAFile+")")
	root.AddCommand(
		newServeCmd(e),
		newMigrateCmd(e),
		newPushCmd(e),
		newJobCmd(e),
		newQueuesCmd(e),
		newQueueCmd(e),
		newCancelCmd(e),
		newRetryCmd(e),
		newDeleteCmd(e),
		newWaitCmd(e),
		newJobsCmd(e),
		newDeadCmd(e),
		newWorkCmd(e),
		newTopicCmd(e),
		newBenchCmd(e),
		newScheduleCmd(e),
		newKeysCmd(e),
		newAuditCmd(e),
	)
	return root
}

// setting returns a string setting: the flag if given, else the
// environment variable if set, else def.
func setting(cmd *cobra.Command, e env, flag, envName, def string) string {
	if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
		return f.Value.String()
	}
	if v := strings.TrimSpace(e.getenv(envName)); v != "" {
		return v
	}
	return def
}

// newClient returns an SDK client for the server the command names.
func newClient(cmd *cobra.Command, e env) (*client.Client, error) {
	url := setting(cmd, e, "server", EnvServer, DefaultServer)
	if !strings.Contains(url, "://") {
		url = "http://" + url // host:port, as --addr takes it
	}
	// A person waits on the command: a full queue fails at once, with the
	// server's estimate of when there will be room.
	policy := client.DefaultRetryPolicy
	policy.FailWhenFull = true
	opts := []client.Option{client.WithUserAgent("spool-cli"), client.WithRetryPolicy(policy),
		client.WithAPIKey(setting(cmd, e, "api-key", EnvAPIKey, ""))}
	if ca := setting(cmd, e, "ca-file", EnvCAFile, ""); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, usagef("--ca-file: %v", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, usagef("--ca-file: %s holds no PEM certificate", ca)
		}
		opts = append(opts, client.WithCAFile(ca))
	}
	c, err := client.New(url, opts...)
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	return c, nil
}

// explain turns an SDK error into what a person at a terminal needs.
func explain(c *client.Client, err error) error {
	if errors.Is(err, spool.ErrUnauthorized) && !strings.Contains(err.Error(), EnvAPIKey) {
		return fmt.Errorf("%w (the server needs an API key: --api-key or %s)", err, EnvAPIKey)
	}
	var te *client.TransportError
	if !errors.As(err, &te) {
		return err
	}
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial") {
		return fmt.Errorf("cannot reach the Spool server at %s: %v (is 'spool serve' running? --server or %s names the server)", c.URL(), errors.Unwrap(te), EnvServer)
	}
	if te.Timeout() {
		return fmt.Errorf("the Spool server at %s did not answer in time: %v", c.URL(), te.Err)
	}
	return err
}

// argsBetween checks the number of arguments with a message that names them.
func argsBetween(min, max int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return usagef("%s takes %s; got %d argument(s)", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}

// listCmd builds a command without arguments that reads a list from the
// server with fetch (a Client method expression) and prints it as a table,
// or with --json as the API's JSON answer (wrap builds it).
func listCmd[T any](e env, use, short, what string,
	fetch func(c *client.Client, ctx context.Context) ([]T, error),
	wrap func([]T) any, table func(io.Writer, []T) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  argsBetween(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, e, func(c *client.Client) error {
				items, err := fetch(c, cmd.Context())
				if err != nil {
					return err
				}
				if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
					return printJSON(e.stdout, wrap(items))
				}
				return table(e.stdout, items)
			})
		},
	}
	cmd.Flags().Bool("json", false, "print the "+what+" as JSON")
	return cmd
}

// withClient runs fn with an SDK client for the server the command names,
// closes it, and explains a failure to reach that server (see explain).
func withClient(cmd *cobra.Command, e env, fn func(c *client.Client) error) error {
	c, err := newClient(cmd, e)
	if err != nil {
		return err
	}
	defer c.Close()
	return explain(c, fn(c))
}
