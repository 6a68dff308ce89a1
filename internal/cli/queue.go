package cli

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

func newQueueCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Show, change or empty one queue: show, stats, set, pause, resume, retry, drain, purge, rm",
		Long: `Show or change one queue's settings, act on many of its jobs at once, or
delete it. A queue exists once it is used: setting its config creates it.`,
		Args: argsBetween(0, 0, "a subcommand: show, stats, set, pause, resume, retry, drain, purge or rm"),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newQueueShowCmd(e), newQueueStatsCmd(e), newQueueSetCmd(e), newQueuePauseCmd(e, true), newQueuePauseCmd(e, false))
	for _, b := range bulkCmds {
		cmd.AddCommand(newQueueBulkCmd(e, b))
	}
	cmd.AddCommand(newQueueRmCmd(e))
	return cmd
}

func newQueueShowCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show QUEUE",
		Short: "Show a queue's settings and depth",
		Args:  argsBetween(1, 1, "QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args[0]); err != nil {
				return err
			}
			return withClient(cmd, e, func(c *client.Client) error {
				q, err := c.Queue(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return printQueue(cmd, e, q)
			})
		},
	}
	cmd.Flags().Bool("json", false, "print the queue as JSON")
	return cmd
}

func newQueueSetCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set QUEUE",
		Short: "Change a queue's settings (only the flags given change)",
		Example: `  spool queue set reports --concurrency 3
  spool queue set emails --rate 50 --burst 100
  spool queue set emails --rate 0          # remove the rate limit
  spool queue set imports --max-depth 10000 --retention 72h --max-attempts 5`,
		Args: argsBetween(1, 1, "QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args[0]); err != nil {
				return err
			}
			cfg, err := queueConfigFlags(cmd)
			if err != nil {
				return err
			}
			return patchQueue(cmd, e, args[0], cfg)
		},
	}
	f := cmd.Flags()
	f.Int("concurrency", 0, "most jobs active at once, across every worker and node (0: no cap)")
	f.Float64("rate", 0, "most jobs started per second, across every worker and node (0: no cap)")
	f.Int("burst", 0, "jobs that may start at once after a quiet spell under --rate (0: the rate rounded up)")
	f.Int64("max-depth", 0, "most jobs not yet finished; more are refused with queue_full")
	f.String("retention", "", "how long finished jobs are kept, e.g. 24h")
	f.Int("max-attempts", 0, "default attempts before a job goes dead")
	f.String("target-wait", "", "the mean wait for a worker to size the queue for, e.g. 30s (0: none); see `spool queue stats`")
	f.String("backoff", "", "delay before a job's first retry, doubling after each failure, e.g. 10s")
	f.String("backoff-max", "", "longest delay before a retry, e.g. 1h")
	f.Bool("json", false, "print the queue as JSON")
	return cmd
}

// queueConfigFlags builds the patch of `queue set` from the flags given.
func queueConfigFlags(cmd *cobra.Command) (spool.QueueConfig, error) {
	f := cmd.Flags()
	cfg := spool.QueueConfig{
		Concurrency: changedFlag(f, "concurrency", f.GetInt),
		Rate:        changedFlag(f, "rate", f.GetFloat64),
		Burst:       changedFlag(f, "burst", f.GetInt),
		MaxDepth:    changedFlag(f, "max-depth", f.GetInt64),
		MaxAttempts: changedFlag(f, "max-attempts", f.GetInt),
	}
	if s := changedFlag(f, "retention", f.GetString); s != nil {
		d, err := spool.ParseDuration(*s)
		if err != nil {
			return cfg, usagef("--retention: %v", err)
		}
		cfg.Retention = ptr(spool.Duration(d))
	}
	if s := changedFlag(f, "target-wait", f.GetString); s != nil {
		d, err := spool.ParseDuration(*s)
		if err != nil {
			return cfg, usagef("--target-wait: %v", err)
		}
		cfg.TargetWait = ptr(spool.Duration(d))
	}
	b, err := backoffFlags(cmd)
	if err != nil {
		return cfg, err
	}
	cfg.Backoff = b
	if names := []string{"concurrency", "rate", "burst", "max-depth", "retention", "max-attempts", "target-wait", "backoff", "backoff-max"}; !slices.ContainsFunc(names, f.Changed) {
		return cfg, usagef("nothing to set: give at least one of --%s", strings.Join(names, ", --"))
	}
	// Checked here too, so a bad value is a usage error sent nowhere.
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}

// changedFlag is the value of flag name if it was given, else nil.
func changedFlag[T any](f *pflag.FlagSet, name string, get func(string) (T, error)) *T {
	if !f.Changed(name) {
		return nil
	}
	v, _ := get(name)
	return &v
}

func newQueuePauseCmd(e env, pause bool) *cobra.Command {
	use, short := "resume QUEUE", "Resume a paused queue: workers get its jobs again"
	if pause {
		use, short = "pause QUEUE", "Pause a queue: it still admits jobs but hands none out"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  argsBetween(1, 1, "QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args[0]); err != nil {
				return err
			}
			return patchQueue(cmd, e, args[0], spool.QueueConfig{Paused: &pause})
		},
	}
	cmd.Flags().Bool("json", false, "print the queue as JSON")
	return cmd
}

func patchQueue(cmd *cobra.Command, e env, name string, cfg spool.QueueConfig) error {
	return withClient(cmd, e, func(c *client.Client) error {
		q, err := c.UpdateQueue(cmd.Context(), name, cfg)
		if err != nil {
			return err
		}
		return printQueue(cmd, e, q)
	})
}

func printQueue(cmd *cobra.Command, e env, q *spool.QueueInfo) error {
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		return printJSON(e.stdout, q)
	}
	return writeQueue(e.stdout, q)
}

// writeQueue prints one queue's settings in force and its depth.
func writeQueue(w io.Writer, q *spool.QueueInfo) error {
	c := q.Config
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("queue", q.Name)
	paused := "no"
	if c.Paused != nil && *c.Paused {
		paused = "yes"
	}
	row("paused", paused)
	row("concurrency", limitText(c.Concurrency != nil && *c.Concurrency > 0, func() string { return strconv.Itoa(*c.Concurrency) }))
	row("rate", limitText(c.Rate != nil && *c.Rate > 0, func() string {
		return strconv.FormatFloat(*c.Rate, 'g', -1, 64) + "/s, burst " + strconv.Itoa(*c.Burst)
	}))
	if c.MaxDepth != nil {
		row("max depth", strconv.FormatInt(*c.MaxDepth, 10))
	}
	if c.Retention != nil {
		row("retention", c.Retention.D().String())
	}
	if c.MaxAttempts != nil {
		row("max attempts", strconv.Itoa(*c.MaxAttempts))
	}
	if c.TargetWait != nil && *c.TargetWait > 0 {
		row("target wait", c.TargetWait.D().String())
	}
	row("depth", fmt.Sprintf("%d (ready %d, scheduled %d, active %d)", q.Depth,
		q.Counts[spool.StateReady], q.Counts[spool.StateScheduled], q.Counts[spool.StateActive]))
	return tw.Flush()
}

func limitText(set bool, v func() string) string {
	if !set {
		return "no limit"
	}
	return v()
}
