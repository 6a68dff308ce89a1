package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/engine"
)

// defaultPage is the page size of jobs and dead.
const defaultPage = 50

func newJobsCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs QUEUE",
		Short: "List a queue's jobs, oldest first, a page at a time",
		Long: `List the jobs of QUEUE, oldest first: a page of --limit jobs (default 50),
then, on stderr, the command that shows the next page. --all lists every
page. --state keeps the jobs in one state: ` + states() + `;
--type, --tag and --ordering-key keep those of a type, tag or ordering key;
--payload FIELD=VALUE those whose payload has that top-level field equal to
VALUE (JSON such as 42 or true, or else a string).`,
		Example: `  spool jobs emails --state ready
  spool jobs emails --type welcome --tag vip
  spool jobs invoices --payload customer=42
  spool jobs emails --state dead --all --json
  spool jobs emails --limit 10 --cursor 0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f`,
		Args: argsBetween(1, 1, "a QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			state, _ := cmd.Flags().GetString("state")
			return listJobs(cmd, e, args[0], spool.State(state), false)
		},
	}
	cmd.Flags().String("state", "", "only jobs in this state")
	addFilterFlags(cmd)
	addPageFlags(cmd)
	return cmd
}

func newDeadCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dead QUEUE",
		Short: "List a queue's dead jobs with their last error",
		Long: `List the dead jobs of QUEUE (failed for the last time), oldest first, with
the error of their last attempt. 'spool job ID' shows every error of one job;
'spool retry ID' or 'spool retry --all-dead QUEUE' puts them back.`,
		Example: `  spool dead emails
  spool dead emails --all --json`,
		Args: argsBetween(1, 1, "a QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return listJobs(cmd, e, args[0], spool.StateDead, true)
		},
	}
	addPageFlags(cmd)
	return cmd
}

func addPageFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Int("limit", defaultPage, fmt.Sprintf("jobs per page, 1 to %d", engine.MaxPageSize))
	f.String("cursor", "", "show the page after this cursor (printed after a page)")
	f.Bool("all", false, "list every page")
	f.Bool("json", false, `print {"jobs":[...],"next_cursor":"..."} as JSON`)
}

func states() string {
	s := make([]string, len(spool.States))
	for i, st := range spool.States {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// listJobs prints one page (or, with --all, every page) of a queue's jobs.
func listJobs(cmd *cobra.Command, e env, queue string, state spool.State, dead bool) error {
	// The webhook deliveries' internal queue may be read.
	if err := spool.ValidateQueueName(queue); err != nil && queue != engine.WebhookQueue {
		return usagef("%v", err)
	}
	if state != "" && !state.Valid() {
		return usagef("--state %q: use one of %s", state, states())
	}
	f := cmd.Flags()
	limit, _ := f.GetInt("limit")
	if limit < 1 || limit > engine.MaxPageSize {
		return usagef("--limit must be between 1 and %d", engine.MaxPageSize)
	}
	cursor, _ := f.GetString("cursor")
	all, _ := f.GetBool("all")
	asJSON, _ := f.GetBool("json")

	return withClient(cmd, e, func(c *client.Client) error {
		opts := client.ListJobsOptions{State: state, Limit: limit, Cursor: cursor}
		if !dead {
			opts.Type, _ = f.GetString("type")
			opts.Tag, _ = f.GetString("tag")
			opts.OrderingKey, _ = f.GetString("ordering-key")
			var err error
			if opts.PayloadField, opts.PayloadValue, err = payloadFilter(cmd); err != nil {
				return err
			}
		}
		out := spool.JobList{Jobs: []*spool.Job{}}
		if all {
			for j, err := range c.Jobs(cmd.Context(), queue, opts) {
				if err != nil {
					return err
				}
				out.Jobs = append(out.Jobs, j)
			}
		} else {
			page, err := c.ListJobs(cmd.Context(), queue, opts)
			if err != nil {
				return err
			}
			out = *page
		}
		if asJSON {
			return printJSON(e.stdout, out)
		}
		var err error
		if dead {
			err = printDead(e.stdout, out.Jobs, time.Now())
		} else {
			err = printJobs(e.stdout, out.Jobs, time.Now())
		}
		if err != nil {
			return err
		}
		if out.NextCursor != "" {
			next := cmd.CommandPath() + " " + queue
			if !dead && state != "" {
				next += " --state " + string(state)
			}
			for _, name := range []string{"type", "tag", "ordering-key", "payload"} {
				if v, _ := f.GetString(name); !dead && v != "" {
					next += " --" + name + " " + strconv.Quote(v)
				}
			}
			if limit != defaultPage {
				next += " --limit " + strconv.Itoa(limit)
			}
			fmt.Fprintf(e.stderr, "more: %s --cursor %s   (or --all)\n", next, out.NextCursor)
		}
		return nil
	})
}

// printJobs writes the jobs table.
func printJobs(w io.Writer, jobs []*spool.Job, now time.Time) error {
	if len(jobs) == 0 {
		_, err := fmt.Fprintln(w, "no jobs")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATE\tATTEMPTS\tCREATED\tLAST ERROR")
	for _, j := range jobs {
		state := string(j.State)
		if j.CancelRequested && j.State == spool.StateActive {
			state += " (cancel requested)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, oneLine(j.Type, 40), state, j.Attempt, j.MaxAttempts,
			ago(j.CreatedAt, now), lastError(j, 60))
	}
	return tw.Flush()
}

// printDead writes the dead jobs table.
func printDead(w io.Writer, jobs []*spool.Job, now time.Time) error {
	if len(jobs) == 0 {
		_, err := fmt.Fprintln(w, "no dead jobs")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tATTEMPTS\tDIED\tLAST ERROR")
	for _, j := range jobs {
		died := ""
		if j.FinishedAt != nil {
			died = ago(*j.FinishedAt, now)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", j.ID, oneLine(j.Type, 40), j.Attempt, j.MaxAttempts, died, lastError(j, 100))
	}
	return tw.Flush()
}

// lastError is the first line of a job's last error, at most n characters.
func lastError(j *spool.Job, n int) string {
	if len(j.Errors) == 0 {
		return "-"
	}
	return oneLine(j.Errors[len(j.Errors)-1].Error, n)
}

// oneLine is the first line of s, cut to n characters with "...".
func oneLine(s string, n int) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i] + " ..."
	}
	s = strings.ReplaceAll(s, "\t", " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-3]) + "..."
	}
	return s
}

// ago is how long before now t was, in a short form.
func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + (-d).Round(time.Second).String()
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h ago"
	}
	return t.Local().Format("2006-01-02")
}
