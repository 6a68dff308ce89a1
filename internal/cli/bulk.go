package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// bulkCmd describes one of the queue commands that act on many jobs.
type bulkCmd struct {
	use, short, long, example string
	// done and would are the verbs of the report ("retried", "would retry").
	done, would string
	run         func(c *client.Client, cmd *cobra.Command, queue string, req spool.BulkRequest) (int64, error)
}

var bulkCmds = []bulkCmd{
	{
		use:   "retry QUEUE",
		short: "Retry the dead and cancelled jobs of a queue (all, or those that pass a filter)",
		long: `Put back, in one request, every dead or cancelled job of QUEUE that passes
the filter (--state dead or cancelled, --type, --tag, --ordering-key; none:
all of them). Once the queue is full it stops with queue_full; the jobs
retried until then stay retried. --dry-run only counts them.`,
		example: `  spool queue retry emails --state dead
  spool queue retry emails --type welcome --dry-run`,
		done: "retried", would: "would retry",
		run: func(c *client.Client, cmd *cobra.Command, q string, req spool.BulkRequest) (int64, error) {
			return c.RetryJobs(cmd.Context(), q, req)
		},
	},
	{
		use:   "drain QUEUE",
		short: "Cancel the jobs of a queue not started yet (all, or those that pass a filter)",
		long: `Cancel every job of QUEUE not started yet (waiting, scheduled, ready) that
passes the filter (--state, --type, --tag, --ordering-key; none: all of
them); running jobs finish. --state active asks the workers of active jobs to
stop instead (cancel_requested). --dry-run only counts them.`,
		example: `  spool queue drain emails
  spool queue drain emails --tag campaign-7 --dry-run`,
		done: "cancelled", would: "would cancel",
		run: func(c *client.Client, cmd *cobra.Command, q string, req spool.BulkRequest) (int64, error) {
			return c.CancelJobs(cmd.Context(), q, req)
		},
	},
	{
		use:   "purge QUEUE",
		short: "Delete the jobs of a queue that are not active (all, or those that pass a filter)",
		long: `Delete, with their payloads and results, every job of QUEUE that is not
active and passes the filter (--state, --type, --tag, --ordering-key; none:
all of them). Jobs not finished are cancelled first. --dry-run only counts
them.`,
		example: `  spool queue purge emails --state dead
  spool queue purge emails --dry-run`,
		done: "deleted", would: "would delete",
		run: func(c *client.Client, cmd *cobra.Command, q string, req spool.BulkRequest) (int64, error) {
			return c.DeleteJobs(cmd.Context(), q, req)
		},
	},
}

func newQueueBulkCmd(e env, b bulkCmd) *cobra.Command {
	cmd := &cobra.Command{
		Use:     b.use,
		Short:   b.short,
		Long:    b.long,
		Example: b.example,
		Args:    argsBetween(1, 1, "QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args[0]); err != nil {
				return err
			}
			f := cmd.Flags()
			req := spool.BulkRequest{}
			state, _ := f.GetString("state")
			req.State = spool.State(state)
			req.Type, _ = f.GetString("type")
			req.Tag, _ = f.GetString("tag")
			req.OrderingKey, _ = f.GetString("ordering-key")
			var err error
			if req.PayloadField, req.PayloadValue, err = payloadFilter(cmd); err != nil {
				return err
			}
			req.DryRun, _ = f.GetBool("dry-run")
			if err := req.Validate(); err != nil {
				return usagef("%v", err)
			}
			return withClient(cmd, e, func(c *client.Client) error {
				n, err := b.run(c, cmd, args[0], req)
				if err != nil {
					if n > 0 {
						fmt.Fprintf(e.stdout, "%s %d job(s) of %s before an error\n", b.done, n, args[0])
					}
					return err
				}
				if asJSON, _ := f.GetBool("json"); asJSON {
					return printJSON(e.stdout, spool.BulkResponse{Count: n, DryRun: req.DryRun})
				}
				verb := b.done
				if req.DryRun {
					verb = b.would
				}
				_, err = fmt.Fprintf(e.stdout, "%s %d job(s) of %s\n", verb, n, args[0])
				return err
			})
		},
	}
	addFilterFlags(cmd)
	cmd.Flags().Bool("dry-run", false, "only count the jobs the command would change")
	cmd.Flags().Bool("json", false, `print {"count":N} as JSON`)
	return cmd
}

// addFilterFlags adds the flags of a job filter.
func addFilterFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	if f.Lookup("state") == nil {
		f.String("state", "", "only jobs in this state: "+states())
	}
	f.String("type", "", "only jobs of this type")
	f.String("tag", "", "only jobs carrying this tag")
	f.String("ordering-key", "", "only jobs of this ordering key")
	f.String("payload", "", `only jobs whose payload has this top-level field equal to this value: FIELD=VALUE, VALUE as JSON (42, true, "acme") or else as a string`)
}

// payloadFilter parses --payload FIELD=VALUE into a payload field and
// JSON value: VALUE is taken as JSON when it is JSON, else as a string.
func payloadFilter(cmd *cobra.Command) (field, value string, err error) {
	v, _ := cmd.Flags().GetString("payload")
	if v == "" {
		return "", "", nil
	}
	field, value, ok := strings.Cut(v, "=")
	if !ok || field == "" {
		return "", "", usagef("--payload wants FIELD=VALUE, such as customer=42 or customer=acme; got %q", v)
	}
	if !json.Valid([]byte(value)) {
		b, _ := json.Marshal(value)
		value = string(b)
	}
	return field, value, nil
}

func newQueueRmCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm QUEUE",
		Short: "Delete a queue: its jobs, topic subscriptions and settings",
		Long: `Delete QUEUE: every job of it, its topic subscriptions and its settings. A
queue with active jobs is refused: cancel them first ('spool queue drain
QUEUE --state active') and delete the queue once their workers have
stopped. A job enqueued afterwards creates the queue again, with the
defaults.`,
		Example: `  spool queue rm old-reports`,
		Args:    argsBetween(1, 1, "QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args[0]); err != nil {
				return err
			}
			return withClient(cmd, e, func(c *client.Client) error {
				n, err := c.DeleteQueue(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "deleted queue %s and %d job(s)\n", args[0], n)
				return err
			})
		},
	}
	return cmd
}
