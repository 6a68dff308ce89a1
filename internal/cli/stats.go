package cli

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

func newQueueStatsCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats QUEUE",
		Short: "Show a queue's telemetry: rates, waits, Little's law, workers needed, drain time",
		Long: `Show a queue's telemetry over the last 1 minute, 5 minutes and 1 hour, the
same on every node: arrival rate (λ), throughput (X), wait and run times,
depth, Little's law (L next to λ·W), busy workers, the workers needed for the
queue's target wait (M/M/c) and the time to drain the backlog.`,
		Example: `  spool queue stats emails
  spool queue stats emails --json --history 24h`,
		Args: argsBetween(1, 1, "QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args[0]); err != nil {
				return err
			}
			var history time.Duration
			if s, _ := cmd.Flags().GetString("history"); s != "" {
				d, err := spool.ParseDuration(s)
				if err != nil {
					return usagef("--history: %v", err)
				}
				history = d
			}
			return withClient(cmd, e, func(c *client.Client) error {
				st, err := c.QueueStats(cmd.Context(), args[0], history)
				if err != nil {
					return err
				}
				if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
					return printJSON(e.stdout, st)
				}
				return writeStats(e.stdout, st)
			})
		},
	}
	cmd.Flags().Bool("json", false, "print the stats as JSON")
	cmd.Flags().String("history", "", "with --json, include a history over this span, e.g. 1h or 24h")
	return cmd
}

// writeStats prints a queue's telemetry as a table, one column per window.
func writeStats(w io.Writer, st *spool.QueueStats) error {
	fmt.Fprintf(w, "queue %s: depth %d (ready %d, active %d), oldest ready %s\n\n", st.Queue, st.Now.Depth,
		st.Now.Counts[spool.StateReady], st.Now.Counts[spool.StateActive], st.Now.OldestReadyAge.D().Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "WINDOW"
	for _, win := range st.Windows {
		head += "\t" + win.Window.D().String()
	}
	fmt.Fprintln(tw, head)
	row := func(name string, f func(ws *spool.WindowStats) string) {
		line := name
		for i := range st.Windows {
			line += "\t" + f(&st.Windows[i])
		}
		fmt.Fprintln(tw, line)
	}
	row("arrival rate λ (/s)", func(ws *spool.WindowStats) string { return rateText(ws.ArrivalRate) })
	row("throughput X (/s)", func(ws *spool.WindowStats) string { return rateText(ws.Throughput) })
	row("failure rate (/s)", func(ws *spool.WindowStats) string { return rateText(ws.FailureRate) })
	row("wait mean", func(ws *spool.WindowStats) string { return secondsText(ws.Wait.Mean) })
	row("wait p50/p95/p99", func(ws *spool.WindowStats) string {
		return secondsText(ws.Wait.P50) + " / " + secondsText(ws.Wait.P95) + " / " + secondsText(ws.Wait.P99)
	})
	row("run mean", func(ws *spool.WindowStats) string { return secondsText(ws.Run.Mean) })
	row("run p50/p95/p99", func(ws *spool.WindowStats) string {
		return secondsText(ws.Run.P50) + " / " + secondsText(ws.Run.P95) + " / " + secondsText(ws.Run.P99)
	})
	row("avg depth", func(ws *spool.WindowStats) string { return strconv.FormatFloat(ws.AvgDepth, 'f', 1, 64) })
	row("L (ready+active)", func(ws *spool.WindowStats) string { return strconv.FormatFloat(ws.LittlesLaw.L, 'f', 2, 64) })
	row("λ·W", func(ws *spool.WindowStats) string { return strconv.FormatFloat(ws.LittlesLaw.LambdaW, 'f', 2, 64) })
	if err := tw.Flush(); err != nil {
		return err
	}
	s := st.Sizing
	fmt.Fprintf(w, "\nsizing (last %s): busy workers %d, offered load %.2f", s.Window.D(), s.Busy, s.OfferedLoad)
	if s.MinWorkers != nil {
		fmt.Fprintf(w, ", at least %d to keep up", *s.MinWorkers)
	}
	if s.WorkersNeeded != nil {
		fmt.Fprintf(w, ", %d for a mean wait within %s", *s.WorkersNeeded, s.TargetWait.D())
	}
	fmt.Fprintln(w)
	switch {
	case s.DrainTime != nil:
		fmt.Fprintf(w, "drain time: %s at a net %s/s\n", secondsText(*s.DrainTime), rateText(s.NetRate))
	default:
		fmt.Fprintf(w, "drain time: never at the current rates (net %s/s)\n", rateText(s.NetRate))
	}
	return nil
}
