package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

func newTopicCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Publish/subscribe: subscribe queues to topics and publish messages",
		Long: `A topic fans each message published to it out into every queue subscribed to
it (optionally only messages of some types), atomically: every subscribed
queue gets the job or none does.`,
		Args: argsBetween(0, 0, "a subcommand: sub, unsub, ls or publish"),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTopicSubCmd(e), newTopicUnsubCmd(e), newTopicLsCmd(e), newTopicPublishCmd(e))
	return cmd
}

func newTopicSubCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sub TOPIC QUEUE",
		Short: "Subscribe QUEUE to TOPIC (or replace its type filter)",
		Example: `  spool topic sub tweets timeline
  spool topic sub tweets followers --type tweet.created --type tweet.edited`,
		Args: argsBetween(2, 2, "TOPIC QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args[0], args[1]); err != nil {
				return err
			}
			types, _ := cmd.Flags().GetStringArray("type")
			return withClient(cmd, e, func(c *client.Client) error {
				sub, err := c.Subscribe(cmd.Context(), args[0], args[1], types...)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "queue %s subscribed to topic %s (%s)\n", sub.Queue, sub.Topic, typesText(sub.Types))
				return err
			})
		},
	}
	cmd.Flags().StringArray("type", nil, "take only messages of this type (repeat for more; default: every type)")
	return cmd
}

func newTopicUnsubCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "unsub TOPIC QUEUE",
		Short: "Unsubscribe QUEUE from TOPIC (jobs already published stay)",
		Args:  argsBetween(2, 2, "TOPIC QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args[0], args[1]); err != nil {
				return err
			}
			return withClient(cmd, e, func(c *client.Client) error {
				if err := c.Unsubscribe(cmd.Context(), args[0], args[1]); err != nil {
					return err
				}
				_, err := fmt.Fprintf(e.stdout, "queue %s unsubscribed from topic %s\n", args[1], args[0])
				return err
			})
		},
	}
}

func newTopicLsCmd(e env) *cobra.Command {
	return listCmd(e, "ls", "List topics and their subscriptions", "topics",
		(*client.Client).Topics,
		func(ts []spool.TopicInfo) any { return spool.TopicsResponse{Topics: ts} },
		printTopics)
}

func printTopics(w io.Writer, ts []spool.TopicInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tQUEUE\tTYPES")
	for _, t := range ts {
		for _, s := range t.Subscriptions {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, s.Queue, typesText(s.Types))
		}
	}
	return tw.Flush()
}

func newTopicPublishCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "publish TOPIC TYPE [PAYLOAD]",
		Short: "Publish a message and print the ids of the jobs it became",
		Long: `Publish a message of TYPE to TOPIC: one job in every subscribed queue that
takes TYPE, all or none. Prints one line per job: its queue and id (with
--json, the jobs). PAYLOAD is read as for 'spool push'.`,
		Example: `  spool topic publish tweets tweet.created '{"id":42,"author":"ada"}'`,
		Args:    argsBetween(2, 3, "TOPIC TYPE [PAYLOAD]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args[0]); err != nil {
				return err
			}
			req, err := enqueueRequest(cmd, e, args[1], args[2:])
			if err != nil {
				return err
			}
			return withClient(cmd, e, func(c *client.Client) error {
				jobs, err := c.Publish(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
					return printJSON(e.stdout, spool.JobsResponse{Jobs: jobs})
				}
				if len(jobs) == 0 {
					fmt.Fprintln(e.stderr, "spool: no subscription took the message; the server dropped it")
				}
				for _, j := range jobs {
					if _, err := fmt.Fprintf(e.stdout, "%s\t%s\n", j.Queue, j.ID); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	addEnqueueFlags(cmd)
	cmd.Flags().Bool("json", false, "print the jobs as JSON")
	return cmd
}

// checkNames refuses malformed topic and queue names before any request.
func checkNames(names ...string) error {
	for _, n := range names {
		if err := spool.ValidateQueueName(n); err != nil {
			return usagef("%v", err)
		}
	}
	return nil
}

func typesText(types []string) string {
	if len(types) == 0 {
		return "all types"
	}
	return strings.Join(types, ",")
}
