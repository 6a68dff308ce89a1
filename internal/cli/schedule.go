package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

func newScheduleCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Cron schedules: enqueue a job at every firing of a cron expression",
		Long: `A schedule enqueues its job at every firing of its cron expression, read in
its time zone, once however many servers share the store. See docs/schedules.md.`,
		Args: argsBetween(0, 0, "a subcommand: set, ls, rm, pause or resume"),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newScheduleSetCmd(e), newScheduleLsCmd(e), newScheduleRmCmd(e),
		newScheduleActionCmd(e, "pause"), newScheduleActionCmd(e, "resume"))
	return cmd
}

func newScheduleSetCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Create or replace the schedule NAME",
		Long: `Create or replace the schedule NAME. --cron takes five fields (minute hour
day-of-month month day-of-week), six with a leading seconds field, or a
descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every 10s).
Replacing a schedule keeps its counters, and its next firing unless --cron,
--tz or --paused changed.`,
		Example: `  spool schedule set nightly-report --cron '30 2 * * *' --tz America/New_York \
      --queue reports --type report.build --payload '{"kind":"daily"}'
  spool schedule set heartbeat --cron '@every 10s' --queue ops --type ping --missed once`,
		Args: argsBetween(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkScheduleName(args[0]); err != nil {
				return err
			}
			req, err := scheduleRequest(cmd, e)
			if err != nil {
				return err
			}
			return withClient(cmd, e, func(c *client.Client) error {
				sc, err := c.PutSchedule(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
					return printJSON(e.stdout, sc)
				}
				_, err = fmt.Fprintf(e.stdout, "schedule %s: %s (%s) → %s/%s; next %s\n", sc.Name, sc.Cron, sc.Timezone,
					sc.Job.Queue, sc.Job.Type, nextText(sc))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.String("cron", "", "cron expression (required)")
	f.String("tz", "", "IANA time zone the expression is read in (default UTC)")
	f.String("missed", "", `firings missed while no server ran: "skip" (default) or "once" (enqueue one job for the latest)`)
	f.Bool("paused", false, "store the schedule paused")
	f.String("queue", "", "queue the jobs go to (required)")
	f.String("type", "", "job type (required)")
	f.String("payload", "", "job payload, JSON ('-' reads it from stdin)")
	f.Int("priority", 0, "job priority (-1000..1000; higher runs first)")
	f.Int("max-attempts", 0, "attempts before a job is dead (default: the queue's)")
	f.String("timeout", "", "how long one attempt may run, e.g. 10m")
	f.String("delay", "", "run each job this long after its firing, e.g. 30s")
	f.StringArray("tag", nil, "job tag (repeatable)")
	f.Bool("json", false, "print the schedule as JSON")
	return cmd
}

// scheduleRequest builds a schedule request from the flags of set.
func scheduleRequest(cmd *cobra.Command, e env) (spool.ScheduleRequest, error) {
	f := cmd.Flags()
	var req spool.ScheduleRequest
	req.Cron, _ = f.GetString("cron")
	req.Timezone, _ = f.GetString("tz")
	req.Missed, _ = f.GetString("missed")
	req.Paused, _ = f.GetBool("paused")
	req.Job.Queue, _ = f.GetString("queue")
	req.Job.Type, _ = f.GetString("type")
	switch {
	case req.Cron == "":
		return req, usagef("--cron is required, e.g. --cron '0 3 * * *' or --cron @hourly")
	case req.Job.Queue == "":
		return req, usagef("--queue is required")
	case req.Job.Type == "":
		return req, usagef("--type is required")
	}
	if err := checkNames(req.Job.Queue); err != nil {
		return req, err
	}
	switch req.Missed {
	case "", spool.MissedSkip, spool.MissedOnce:
	default:
		return req, usagef("--missed must be %q or %q", spool.MissedSkip, spool.MissedOnce)
	}
	if f.Changed("payload") {
		p, _ := f.GetString("payload")
		var err error
		if req.Job.Payload, err = readPayload(e, []string{p}); err != nil {
			return req, err
		}
	}
	for _, d := range []struct {
		flag string
		dst  **spool.Duration
	}{{"timeout", &req.Job.Timeout}, {"delay", &req.Job.Delay}} {
		if s, _ := f.GetString(d.flag); s != "" {
			v, err := spool.ParseDuration(s)
			if err != nil {
				return req, usagef("--%s: %v", d.flag, err)
			}
			*d.dst = ptr(spool.Duration(v))
		}
	}
	req.Job.Priority, _ = f.GetInt("priority")
	req.Job.MaxAttempts, _ = f.GetInt("max-attempts")
	req.Job.Tags, _ = f.GetStringArray("tag")
	return req, nil
}

func checkScheduleName(name string) error {
	if err := spool.ValidateScheduleName(name); err != nil {
		return usagef("%v", err)
	}
	return nil
}

func nextText(sc *spool.Schedule) string {
	if sc.Paused || sc.NextFireAt == nil {
		return "none (paused)"
	}
	return sc.NextFireAt.UTC().Format(time.RFC3339)
}

func newScheduleLsCmd(e env) *cobra.Command {
	return listCmd(e, "ls", "List schedules with their next firing and counters", "schedules",
		(*client.Client).Schedules,
		func(all []*spool.Schedule) any { return spool.SchedulesResponse{Schedules: all} },
		printSchedules)
}

func printSchedules(w io.Writer, all []*spool.Schedule) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCRON\tTZ\tQUEUE\tTYPE\tNEXT\tFIRED\tMISSED\tLAST MISSED")
	for _, s := range all {
		last := "-"
		if s.LastMissedAt != nil {
			last = s.LastMissedAt.UTC().Format(time.RFC3339) + " (" + s.LastMissedReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.Name, s.Cron, s.Timezone, s.Job.Queue, s.Job.Type,
			nextText(s), s.FiredCount, s.MissedCount, last)
	}
	return tw.Flush()
}

func newScheduleRmCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete the schedule NAME (jobs it enqueued stay)",
		Args:  argsBetween(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkScheduleName(args[0]); err != nil {
				return err
			}
			return withClient(cmd, e, func(c *client.Client) error {
				if err := c.DeleteSchedule(cmd.Context(), args[0]); err != nil {
					return err
				}
				_, err := fmt.Fprintf(e.stdout, "schedule %s deleted\n", args[0])
				return err
			})
		},
	}
}

func newScheduleActionCmd(e env, action string) *cobra.Command {
	short := "Pause the schedule NAME: it does not fire until resumed"
	if action == "resume" {
		short = "Resume the schedule NAME from its next firing after now (no backlog)"
	}
	return &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  argsBetween(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkScheduleName(args[0]); err != nil {
				return err
			}
			return withClient(cmd, e, func(c *client.Client) error {
				do := c.PauseSchedule
				if action == "resume" {
					do = c.ResumeSchedule
				}
				sc, err := do(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "schedule %s %sd; next %s\n", sc.Name, action, nextText(sc))
				return err
			})
		},
	}
}
