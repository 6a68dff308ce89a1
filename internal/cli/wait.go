package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

func newWaitCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wait ID",
		Short: "Wait until a job is finished and show it; fail unless it succeeded",
		Long: `Wait until the job is finished (succeeded, dead or cancelled), however long
that takes (or at most --timeout), and show it. The exit status is 0 when it
succeeded, 1 when it ended dead or cancelled, or --timeout passed first, so
scripts can chain on it:

  id=$(spool push reports build '{"month":"2026-02"}') && spool wait "$id" --json`,
		Args: jobIDArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return wait(cmd, e, args[0])
		},
	}
	cmd.Flags().Duration("timeout", 0, "give up after this long, e.g. 10m (default: wait for as long as it takes)")
	cmd.Flags().Bool("json", false, "print the job as JSON")
	return cmd
}

func wait(cmd *cobra.Command, e env, id string) error {
	timeout, _ := cmd.Flags().GetDuration("timeout")
	if timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	return withClient(cmd, e, func(c *client.Client) error {
		ctx := cmd.Context()
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		job, err := c.Wait(ctx, id)
		if err != nil {
			if job != nil && errors.Is(err, context.DeadlineExceeded) && cmd.Context().Err() == nil {
				return fmt.Errorf("job %s is still %s after %s", id, job.State, timeout)
			}
			return err
		}
		if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
			err = printJSON(e.stdout, job)
		} else {
			err = printJob(e.stdout, job, time.Now())
		}
		if err != nil {
			return err
		}
		switch job.State {
		case spool.StateSucceeded:
			return nil
		case spool.StateDead:
			last := "no error recorded"
			if n := len(job.Errors); n > 0 {
				last = firstLine(job.Errors[n-1].Error)
			}
			return fmt.Errorf("job %s is dead after %d attempt(s): %s", id, job.Attempt, last)
		}
		return fmt.Errorf("job %s was %s", id, job.State)
	})
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
