package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/auth"
	"github.com/spoolq/spool/internal/store/open"
)

// Environment variables of access control.
const (
	EnvAPIKey        = "SPOOL_API_KEY"
	EnvCAFile        = "SPOOL_CA_FILE"
	EnvSecretKey     = "SPOOL_SECRET_KEY"
	EnvSecretKeyFile = "SPOOL_SECRET_KEY_FILE"
)

func newKeysCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys",
		Long: `API keys let clients in: a server with at least one key answers requests
without a valid key 401, and requests the key's roles or queue patterns do not
allow 403. Roles: admin (everything), producer (enqueue, publish, read and
cancel jobs), worker (lease and report), viewer (read-only; payloads hidden
unless --can-view-payloads). Clients send the secret as
"Authorization: Bearer <secret>"; the spool command reads it from --api-key
or ` + EnvAPIKey + `.

Over HTTP these commands need an admin key. 'keys create' also works offline,
against the data directory (--data) or database (--store) of a server that is
not running (the embedded store) or running (PostgreSQL): that is how the
first admin key is made.`,
		Args: argsBetween(0, 0, "a subcommand: create, ls or revoke"),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newKeysCreateCmd(e), newKeysLsCmd(e), newKeysRevokeCmd(e))
	return cmd
}

func newKeysCreateCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an API key and print its secret (shown this once)",
		Example: `  spool keys create --name admin --role admin --data ./spool-data   # the first key, offline
  spool keys create --name reports --role worker --role producer --queues 'reports.*'
  spool keys create --name grafana --role viewer --expires 720h --json`,
		Args: argsBetween(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			name, _ := f.GetString("name")
			roles, _ := f.GetStringSlice("role")
			queues, _ := f.GetStringSlice("queues")
			payloads, _ := f.GetBool("can-view-payloads")
			expires, _ := f.GetDuration("expires")
			asJSON, _ := f.GetBool("json")
			if name == "" {
				return usagef("--name is required: say what the key is for")
			}
			if len(roles) == 0 {
				return usagef("--role is required: admin, producer, worker or viewer (repeatable)")
			}
			for _, r := range roles {
				if _, err := auth.ParseRole(r); err != nil {
					return usagef("--role: %v", err)
				}
			}
			for _, q := range queues {
				if err := auth.ValidatePattern(q); err != nil {
					return usagef("--queues: %v", err)
				}
			}
			if expires < 0 {
				return usagef("--expires must be positive, got %s", expires)
			}
			var k *spool.CreatedKey
			if f.Changed("data") || f.Changed("store") {
				var err error
				k, err = createOffline(cmd, e, auth.CreateParams{Name: name, Roles: roles, Queues: queues, CanViewPayloads: payloads, Expires: expires})
				if err != nil {
					return err
				}
			} else {
				req := spool.CreateKeyRequest{Name: name, Roles: roles, Queues: queues, CanViewPayloads: payloads}
				if expires > 0 {
					d := spool.Duration(expires)
					req.Expires = &d
				}
				err := withClient(cmd, e, func(c *client.Client) (err error) {
					k, err = c.CreateKey(cmd.Context(), req)
					return err
				})
				if err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(e.stdout, k)
			}
			_, err := fmt.Fprintf(e.stdout, "key %s (%s) created: roles %s%s\nsecret (shown this once; send as Authorization: Bearer <secret>, or set %s):\n%s\n",
				k.ID, k.Name, strings.Join(k.Roles, ","), scopeText(k.Queues), EnvAPIKey, k.Secret)
			return err
		},
	}
	f := cmd.Flags()
	f.String("name", "", "what the key is for (required)")
	f.StringSlice("role", nil, "role: admin, producer, worker or viewer (repeatable, or comma-separated)")
	f.StringSlice("queues", nil, "queue and topic name patterns the key is limited to, e.g. 'reports.*,emails' (default: all)")
	f.Bool("can-view-payloads", false, "let a viewer key see payloads and results")
	f.Duration("expires", 0, "lifetime of the key, e.g. 720h (default: no expiry)")
	f.Bool("json", false, `print the key as JSON: {"id":...,"secret":...,...}`)
	f.String("data", "", "create the key offline in this embedded store's data directory (the server must be stopped)")
	f.String("store", "", "create the key offline in this PostgreSQL store (postgres://...)")
	f.String("secret-key-file", "", "file with the server's secret encryption key, so the key can sign SQS API requests (env "+EnvSecretKeyFile+" or "+EnvSecretKey+")")
	return cmd
}

// createOffline creates a key directly in a store.
func createOffline(cmd *cobra.Command, e env, p auth.CreateParams) (*spool.CreatedKey, error) {
	f := cmd.Flags()
	data, _ := f.GetString("data")
	url, _ := f.GetString("store")
	if url != "" {
		if err := open.Check(url); err != nil {
			return nil, usagef("--store: %v", err)
		}
	}
	sealer, err := auth.LoadSealer(setting(cmd, e, "secret-key-file", EnvSecretKeyFile, ""), strings.TrimSpace(e.getenv(EnvSecretKey)))
	if err != nil {
		return nil, usagef("%v", err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
	defer cancel()
	st, err := open.Open(ctx, open.Options{URL: url, DataDir: data})
	if err != nil {
		if url == "" {
			return nil, fmt.Errorf("%w (is a server running on it? stop it first, or create the key over HTTP with an admin key)", err)
		}
		return nil, err
	}
	k, err := auth.NewKeyring(auth.KeyringConfig{Store: st, Sealer: sealer}).Create(ctx, p)
	if cerr := st.Close(); err == nil && cerr != nil {
		return nil, cerr
	}
	return k, err
}

func scopeText(queues []string) string {
	if len(queues) == 0 {
		return ""
	}
	return ", queues " + strings.Join(queues, ",")
}

func newKeysLsCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List API keys (never their secrets)",
		Args:  argsBetween(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, _ := cmd.Flags().GetBool("json")
			return withClient(cmd, e, func(c *client.Client) error {
				keys, err := c.Keys(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(e.stdout, spool.KeysResponse{Keys: keys})
				}
				return printKeys(e.stdout, keys)
			})
		},
	}
	cmd.Flags().Bool("json", false, `print {"keys":[...]} as JSON`)
	return cmd
}

func printKeys(w io.Writer, keys []spool.Key) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLES\tQUEUES\tCREATED\tLAST USED\tSTATUS")
	for _, k := range keys {
		status := "active"
		switch {
		case k.RevokedAt != nil:
			status = "revoked " + k.RevokedAt.Format(time.RFC3339)
		case k.ExpiresAt != nil && time.Now().After(*k.ExpiresAt):
			status = "expired " + k.ExpiresAt.Format(time.RFC3339)
		case k.ExpiresAt != nil:
			status = "expires " + k.ExpiresAt.Format(time.RFC3339)
		}
		queues := "*"
		if len(k.Queues) > 0 {
			queues = strings.Join(k.Queues, ",")
		}
		used := "-"
		if k.LastUsedAt != nil {
			used = k.LastUsedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Roles, ","), queues, k.CreatedAt.Format(time.RFC3339), used, status)
	}
	return tw.Flush()
}

func newKeysRevokeCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key: it stops working within a second or two on every node",
		Args:  argsBetween(1, 1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, e, func(c *client.Client) error {
				k, err := c.RevokeKey(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "key %s (%s) revoked\n", k.ID, k.Name)
				return err
			})
		},
	}
}

func newAuditCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log of admin actions, newest first (needs an admin key)",
		Args:  argsBetween(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			limit, _ := f.GetInt("limit")
			cursor, _ := f.GetString("cursor")
			asJSON, _ := f.GetBool("json")
			if limit < 1 || limit > 1000 {
				return usagef("--limit must be between 1 and 1000, got %d", limit)
			}
			return withClient(cmd, e, func(c *client.Client) error {
				page, err := c.Audit(cmd.Context(), limit, cursor)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(e.stdout, page)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "AT\tKEY\tACTION\tRESOURCE\tFROM")
				for _, a := range page.Entries {
					key := a.KeyID
					if key == "" {
						key = "(open)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.At.Format(time.RFC3339), key, a.Action, a.Resource, a.RemoteAddr)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if page.NextCursor != "" {
					_, err = fmt.Fprintf(e.stdout, "more: spool audit --cursor %s\n", page.NextCursor)
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.Int("limit", 50, "entries to show")
	f.String("cursor", "", "continue after this entry (printed at the end of a page)")
	f.Bool("json", false, `print {"entries":[...],"next_cursor":"..."} as JSON`)
	return cmd
}
