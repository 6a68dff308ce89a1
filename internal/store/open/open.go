// Package open is the one place that knows every store backend: it checks
// a store URL, opens (and migrates) the store it names, and redacts it for
// logs. A new backend is one package plus one case here. It takes plain
// values, not a server's config.
package open

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/store/embedded"
	"github.com/spoolq/spool/internal/store/postgres"
)

// DefaultMaxConns is the connection pool size of a PostgreSQL store whose
// URL sets no pool_max_conns.
const DefaultMaxConns = 16

// Options name a store.
type Options struct {
	// URL names a database store (postgres:// or postgresql://); "" means
	// the embedded store in DataDir.
	URL string
	// DataDir is the embedded store's directory.
	DataDir string
	// Logger receives the store's messages (nil: discard).
	Logger *slog.Logger
}

// backend is the kind of store a URL names.
type backend int

const (
	embeddedStore backend = iota
	postgresStore
)

func backendOf(url string) (backend, error) {
	switch {
	case url == "":
		return embeddedStore, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return postgresStore, nil
	}
	return 0, fmt.Errorf("%q is not a PostgreSQL URL (postgres://user@host/database); leave it empty for the embedded store", Redact(url))
}

// Check reports whether url names a store this build can open ("" is the
// embedded store).
func Check(url string) error {
	_, err := backendOf(url)
	return err
}

// IsDatabase reports whether url names a database store (shared by
// several nodes, with migrations).
func IsDatabase(url string) bool {
	b, err := backendOf(url)
	return err == nil && b != embeddedStore
}

// Redact returns url fit for logs and messages: without its password.
func Redact(url string) string { return postgres.RedactURL(url) }

// Describe names the store of o in logs: the redacted URL, or
// "embedded:" and the directory.
func Describe(o Options) string {
	if o.URL != "" {
		return Redact(o.URL)
	}
	return "embedded:" + o.DataDir
}

// Open opens the store o names and applies a database's pending
// migrations. ctx bounds connecting and migrating, not the store's life.
func Open(ctx context.Context, o Options) (store.Store, error) {
	b, err := backendOf(o.URL)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch b {
	case postgresStore:
		opts := postgres.Options{Logger: o.Logger}
		if !strings.Contains(o.URL, "pool_max_conns=") {
			opts.MaxConns = DefaultMaxConns
		}
		st, err := postgres.Open(ctx, o.URL, opts)
		if err != nil {
			return nil, fmt.Errorf("opening the PostgreSQL store at %s: %w", Redact(o.URL), err)
		}
		return st, nil
	default:
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st, err := embedded.Open(o.DataDir, embedded.Options{Logger: o.Logger})
		if err != nil {
			return nil, fmt.Errorf("opening the store in %q: %w", o.DataDir, err)
		}
		return st, nil
	}
}

// Migration is what Migrate did.
type Migration struct {
	// Schema holds the store's tables.
	Schema string
	// From and To are the schema versions before and after (equal: it
	// was up to date).
	From, To int
}

// Migrate applies the pending migrations of the database store url names.
// The embedded store has none (it checks its format when opened): an
// error says so.
func Migrate(ctx context.Context, url string) (Migration, error) {
	b, err := backendOf(url)
	if err != nil {
		return Migration{}, err
	}
	if b == embeddedStore {
		return Migration{}, fmt.Errorf("the embedded store needs no migration: it checks its format when opened")
	}
	schema, from, to, err := postgres.MigrateSchema(ctx, url, postgres.Options{MaxConns: 2})
	if err != nil {
		return Migration{}, fmt.Errorf("migrating %s: %w", Redact(url), err)
	}
	return Migration{Schema: schema, From: from, To: to}, nil
}
