package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

func newJobCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job ID",
		Short: "Show a job: state, attempts, errors, result, progress",
		Long: `Show a job. With --wait, wait up to that long for it to finish
(succeeded, dead or cancelled) and show it as it is then.`,
		Example: `  spool job 0190a7e4-8c1e-7c3a-9d52-5b1f0e2a9c11
  spool job 0190a7e4-8c1e-7c3a-9d52-5b1f0e2a9c11 --wait 30s --json`,
		Args: jobIDArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			wait := time.Duration(0)
			if s, _ := cmd.Flags().GetString("wait"); s != "" {
				d, err := spool.ParseDuration(s)
				if err != nil {
					return usagef("--wait: %v", err)
				}
				if d > spool.MaxWait {
					return usagef("--wait must be at most %s", spool.MaxWait)
				}
				wait = d
			}
			return withClient(cmd, e, func(c *client.Client) error {
				job, err := c.Get(cmd.Context(), args[0], wait)
				if err != nil {
					return err
				}
				if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
					return printJSON(e.stdout, job)
				}
				return printJob(e.stdout, job, time.Now())
			})
		},
	}
	cmd.Flags().String("wait", "", "wait up to this long for the job to finish, e.g. 30s")
	cmd.Flags().Bool("json", false, "print the job as JSON")
	return cmd
}

func newCancelCmd(e env) *cobra.Command {
	return jobActionCmd(e, "cancel", "Cancel a job (an active one at its next heartbeat or ack)")
}

func newRetryCmd(e env) *cobra.Command {
	cmd := jobActionCmd(e, "retry", "Put a dead or cancelled job back in its queue (or every dead job of a queue)")
	cmd.Use = "retry ID | retry --all-dead QUEUE"
	cmd.Long = `Put a dead or cancelled job back in its queue, ready, with a fresh set of
attempts (its past errors are kept). With --all-dead, put back every dead
job of QUEUE.`
	cmd.Example = `  spool retry 0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f
  spool retry --all-dead emails`
	cmd.Args = argsBetween(1, 1, "a job ID (or, with --all-dead, a QUEUE)")
	one := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if all, _ := cmd.Flags().GetBool("all-dead"); all {
			return retryAllDead(cmd, e, args[0])
		}
		if err := jobIDArg(cmd, args); err != nil {
			return err
		}
		return one(cmd, args)
	}
	cmd.Flags().Bool("all-dead", false, "retry every dead job of the queue named instead of an ID")
	return cmd
}

// retryAllDead retries the dead jobs of a queue in one request.
func retryAllDead(cmd *cobra.Command, e env, queue string) error {
	if err := spool.ValidateQueueName(queue); err != nil {
		return usagef("%v", err)
	}
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		return usagef("--json does not go with --all-dead")
	}
	return withClient(cmd, e, func(c *client.Client) error {
		n, err := c.RetryJobs(cmd.Context(), queue, spool.BulkRequest{State: spool.StateDead})
		if err != nil {
			if n > 0 {
				fmt.Fprintf(e.stdout, "retried %d dead job(s) of %s before an error\n", n, queue)
			}
			return err
		}
		if n == 0 {
			_, err := fmt.Fprintf(e.stdout, "no dead jobs in %s\n", queue)
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "retried %d dead job(s) of %s\n", n, queue)
		return err
	})
}

// jobIDArg checks that the only argument is a job id: a malformed one is
// a usage error, sent nowhere.
func jobIDArg(cmd *cobra.Command, args []string) error {
	if err := argsBetween(1, 1, "a job ID")(cmd, args); err != nil {
		return err
	}
	if u, err := uuid.Parse(args[0]); err != nil || len(args[0]) != 36 || u.String() != strings.ToLower(args[0]) {
		return usagef("%q is not a job id: job ids are UUIDs such as 0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f", args[0])
	}
	return nil
}

func newDeleteCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a job that is not active, with its payload and result",
		Long: `Delete a job that is not active, with its payload and result. A job not
finished is cancelled first (jobs that depend on it are cancelled too). An
active job is refused: cancel it first ('spool cancel ID'), and delete it
once it is cancelled. 'spool queue purge QUEUE' deletes many at once.`,
		Example: `  spool delete 0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f`,
		Args:    jobIDArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, e, func(c *client.Client) error {
				if err := c.Delete(cmd.Context(), args[0]); err != nil {
					return err
				}
				_, err := fmt.Fprintf(e.stdout, "deleted %s\n", args[0])
				return err
			})
		},
	}
}

// jobActionCmd is a command that changes one job and shows it.
func jobActionCmd(e env, name, short string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   name + " ID",
		Short: short,
		Args:  jobIDArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, e, func(c *client.Client) error {
				act := c.Cancel
				if name == "retry" {
					act = c.Retry
				}
				job, err := act(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
					return printJSON(e.stdout, job)
				}
				return printJob(e.stdout, job, time.Now())
			})
		},
	}
	cmd.Flags().Bool("json", false, "print the job as JSON")
	return cmd
}

// printJob writes a person's view of a job.
func printJob(w io.Writer, j *spool.Job, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	state := string(j.State)
	if j.CancelRequested && j.State == spool.StateActive {
		state += " (cancel requested)"
	}
	row("id", j.ID)
	row("queue", j.Queue)
	row("type", j.Type)
	row("state", state)
	row("attempts", fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts))
	if j.Priority != 0 {
		row("priority", strconv.Itoa(j.Priority))
	}
	row("created", when(&j.CreatedAt, now))
	if j.State == spool.StateScheduled || j.RunAt.After(j.CreatedAt) {
		row("run at", when(&j.RunAt, now))
	}
	row("started", when(j.StartedAt, now))
	row("finished", when(j.FinishedAt, now))
	if j.Timeout > 0 {
		row("timeout", j.Timeout.D().String())
	}
	row("worker", j.Worker)
	if j.State == spool.StateActive {
		row("lease expires", when(j.LeaseExpiresAt, now))
	}
	if p := j.Progress; p != nil {
		v := strconv.FormatFloat(p.Percent, 'f', -1, 64) + "%"
		if p.Message != "" {
			v += " " + p.Message
		}
		row("progress", v+" ("+when(&p.UpdatedAt, now)+")")
	}
	row("idempotency key", j.IdempotencyKey)
	row("tags", strings.Join(j.Tags, ", "))
	row("payload", string(j.Payload))
	row("result", string(j.Result))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(j.Errors) > 0 {
		fmt.Fprintln(w, "errors:")
		for _, e := range j.Errors {
			fmt.Fprintf(w, "  attempt %d, %s: %s\n", e.Attempt, when(&e.At, now), e.Error)
		}
	}
	return nil
}

// when formats a time with how long ago (or how far ahead) it is.
func when(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	d := now.Sub(*t).Round(time.Second)
	s := t.Local().Format(time.RFC3339)
	switch {
	case d > 0:
		return s + " (" + d.String() + " ago)"
	case d < 0:
		return s + " (in " + (-d).String() + ")"
	}
	return s + " (now)"
}

func newQueuesCmd(e env) *cobra.Command {
	return listCmd(e, "queues", "List queues with their depth by state", "queues",
		(*client.Client).Queues,
		func(qs []spool.QueueInfo) any { return spool.QueuesResponse{Queues: qs} },
		printQueues)
}

// rateText formats a rate per second with 3 significant digits.
func rateText(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

// secondsText formats seconds as a duration rounded to what matters.
func secondsText(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d == 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// printQueues writes the queue table.
func printQueues(w io.Writer, qs []spool.QueueInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tWAITING\tREADY\tSCHEDULED\tACTIVE\tSUCCEEDED\tDEAD\tCANCELLED\tDEPTH\tMAX DEPTH\tPAUSED\tIN/S\tOUT/S\tWAIT P99")
	for _, q := range qs {
		maxDepth, paused := "-", "no"
		if q.Config.MaxDepth != nil {
			maxDepth = strconv.FormatInt(*q.Config.MaxDepth, 10)
		}
		if q.Config.Paused != nil && *q.Config.Paused {
			paused = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", q.Name,
			q.Counts[spool.StateWaiting], q.Counts[spool.StateReady], q.Counts[spool.StateScheduled], q.Counts[spool.StateActive],
			q.Counts[spool.StateSucceeded], q.Counts[spool.StateDead], q.Counts[spool.StateCancelled], q.Depth, maxDepth, paused, rateText(q.EnqueueRate), rateText(q.CompleteRate),
			secondsText(q.WaitP99.D().Seconds()))
	}
	return tw.Flush()
}
