package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// maxStdinPayload bounds a payload read from stdin; the server's own limit
// (1 MiB by default) is checked by the server.
const maxStdinPayload = 64 << 20

func newPushCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "push QUEUE TYPE [PAYLOAD]",
		Short: "Enqueue a job and print its id",
		Long: `Enqueue a job of TYPE into QUEUE and print its id (with --json, the job).

PAYLOAD is JSON; '-' reads it from stdin. Without it the job has no
payload, and stdin is left alone (a push inside a 'while read' loop does not
eat the loop's input).`,
		Example: `  spool push emails welcome '{"to":"ada@example.com"}'
  echo '{"report":42}' | spool push reports build - --priority 10
  spool push emails digest --delay 1h --idempotency-key digest-2024-06-01
  spool push reports publish --depends-on "$(spool push reports render)"`,
		Args: argsBetween(2, 3, "QUEUE TYPE [PAYLOAD]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return push(cmd, e, args)
		},
	}
	addEnqueueFlags(cmd)
	cmd.Flags().StringArray("depends-on", nil, "a job id this one waits for: it runs once every such job has succeeded (repeat for more)")
	cmd.Flags().Bool("json", false, "print the whole job as JSON")
	return cmd
}

// addEnqueueFlags adds the flags of an enqueue request (push, topic publish).
func addEnqueueFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("delay", "", "run after this long, e.g. 30s, 5m, 2h")
	f.String("run-at", "", "run at this time (RFC 3339, e.g. 2030-01-02T15:04:05Z)")
	f.Int("priority", 0, fmt.Sprintf("priority in [%d, %d]; higher runs first", spool.MinPriority, spool.MaxPriority))
	f.Int("max-attempts", 0, "attempts before the job goes dead (default: the queue's)")
	f.String("timeout", "", "how long one attempt may run, e.g. 10m")
	f.String("idempotency-key", "", "a key that makes a repeated push return the first job")
	f.String("ordering-key", "", "jobs of the queue with the same key run one at a time, in push order")
	f.StringArray("tag", nil, "a tag (repeat for more)")
	f.String("callback-url", "", "POST the job here, signed, when it finishes (the server needs --webhook-secret)")
	f.String("backoff", "", "delay before the first retry, doubling after each failure, e.g. 10s (default: the queue's)")
	f.String("backoff-max", "", "longest delay before a retry, e.g. 1h (default: the queue's)")
}

// backoffFlags reads --backoff and --backoff-max (nil when neither is
// given).
func backoffFlags(cmd *cobra.Command) (*spool.Backoff, error) {
	f := cmd.Flags()
	if !f.Changed("backoff") && !f.Changed("backoff-max") {
		return nil, nil
	}
	b := &spool.Backoff{}
	for _, fl := range []struct {
		name string
		to   *spool.Duration
	}{{"backoff", &b.Base}, {"backoff-max", &b.Max}} {
		s, _ := f.GetString(fl.name)
		if s == "" {
			continue
		}
		d, err := spool.ParseDuration(s)
		if err != nil {
			return nil, usagef("--%s: %v", fl.name, err)
		}
		if d <= 0 {
			return nil, usagef("--%s must be positive; a failed attempt can ask for an immediate retry itself (retry_in 0s)", fl.name)
		}
		*fl.to = spool.Duration(d)
	}
	if err := b.Validate("backoff"); err != nil {
		return nil, usagef("%v", err)
	}
	return b, nil
}

func push(cmd *cobra.Command, e env, args []string) error {
	queue, typ := args[0], args[1]
	if err := spool.ValidateQueueName(queue); err != nil {
		return usagef("%v", err)
	}
	req, err := enqueueRequest(cmd, e, typ, args[2:])
	if err != nil {
		return err
	}
	req.DependsOn, _ = cmd.Flags().GetStringArray("depends-on")
	asJSON, _ := cmd.Flags().GetBool("json")

	return withClient(cmd, e, func(c *client.Client) error {
		job, existing, err := c.Enqueue(cmd.Context(), queue, req)
		if err != nil {
			return err
		}
		if existing {
			fmt.Fprintf(e.stderr, "spool: idempotency key %q names job %s, enqueued before; nothing new was enqueued\n", req.IdempotencyKey, job.ID)
		}
		if asJSON {
			return printJSON(e.stdout, job)
		}
		_, err = fmt.Fprintln(e.stdout, job.ID)
		return err
	})
}

// enqueueRequest builds an enqueue request of type typ from the payload
// argument (or stdin) and the flags of addEnqueueFlags.
func enqueueRequest(cmd *cobra.Command, e env, typ string, payloadArgs []string) (spool.EnqueueRequest, error) {
	req := spool.EnqueueRequest{Type: typ}
	f := cmd.Flags()
	var err error
	if req.Payload, err = readPayload(e, payloadArgs); err != nil {
		return req, err
	}
	if s, _ := f.GetString("delay"); s != "" {
		d, err := spool.ParseDuration(s)
		if err != nil {
			return req, usagef("--delay: %v", err)
		}
		req.Delay = ptr(spool.Duration(d))
	}
	if s, _ := f.GetString("run-at"); s != "" {
		if req.Delay != nil {
			return req, usagef("give --delay or --run-at, not both")
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return req, usagef("--run-at %q: use RFC 3339, such as 2030-01-02T15:04:05Z", s)
		}
		req.RunAt = &t
	}
	if s, _ := f.GetString("timeout"); s != "" {
		d, err := spool.ParseDuration(s)
		if err != nil {
			return req, usagef("--timeout: %v", err)
		}
		req.Timeout = ptr(spool.Duration(d))
	}
	req.Priority, _ = f.GetInt("priority")
	req.MaxAttempts, _ = f.GetInt("max-attempts")
	req.IdempotencyKey, _ = f.GetString("idempotency-key")
	req.OrderingKey, _ = f.GetString("ordering-key")
	req.Tags, _ = f.GetStringArray("tag")
	req.CallbackURL, _ = f.GetString("callback-url")
	if req.Backoff, err = backoffFlags(cmd); err != nil {
		return req, err
	}
	return req, nil
}

// readPayload returns the payload from the argument, or from stdin when
// the argument is "-"; no argument is no payload, and stdin is not read.
// Empty input is no payload.
func readPayload(e env, args []string) (json.RawMessage, error) {
	var (
		raw  []byte
		from = "payload"
	)
	switch {
	case len(args) == 0:
		return nil, nil
	case args[0] != "-":
		raw = []byte(args[0])
	default:
		from = "payload from stdin"
		b, err := io.ReadAll(io.LimitReader(e.stdin, maxStdinPayload+1))
		if err != nil {
			return nil, fmt.Errorf("reading the payload from stdin: %w", err)
		}
		if len(b) > maxStdinPayload {
			return nil, usagef("%s is larger than %d MiB", from, maxStdinPayload>>20)
		}
		raw = b
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		return nil, usagef("%s is not valid JSON (%v); a string needs quotes, e.g. '\"hello\"'", from, err)
	}
	return json.RawMessage(raw), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func ptr[T any](v T) *T { return &v }
