package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool/internal/store/open"
)

func newMigrateCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the PostgreSQL store's schema migrations and exit",
		Long: `Apply the pending schema migrations of the PostgreSQL store that --store
(or ` + EnvStore + `) names, then exit: for deployments that migrate before
rolling out nodes. 'spool serve --store' applies them at start as well; both
are safe to run on several machines at once (an advisory lock serializes
them). The URL's search_path parameter names the schema (default public).

The embedded store needs no migrate: it checks its format when opened.`,
		Args: argsBetween(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return migrate(cmd, e)
		},
	}
	f := cmd.Flags()
	f.String("store", "", "PostgreSQL URL (postgres://user@host/database?search_path=schema)")
	f.Duration("timeout", time.Minute, "how long connecting and migrating may take")
	return cmd
}

func migrate(cmd *cobra.Command, e env) error {
	url := setting(cmd, e, "store", EnvStore, "")
	if url == "" {
		return usagef("--store (or %s) must name the PostgreSQL database to migrate", EnvStore)
	}
	if !open.IsDatabase(url) {
		if err := open.Check(url); err != nil {
			return usagef("--store: %v", err)
		}
	}
	timeout, _ := cmd.Flags().GetDuration("timeout")
	if timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	m, err := open.Migrate(ctx, url)
	if err != nil {
		return err
	}
	if m.From == m.To {
		fmt.Fprintf(e.stdout, "schema %s is up to date (version %d)\n", m.Schema, m.To)
		return nil
	}
	fmt.Fprintf(e.stdout, "schema %s migrated from version %d to %d\n", m.Schema, m.From, m.To)
	return nil
}
