package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered file of migrations/: NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. Versions
// start at 1 and have no gaps; a malformed set is a build error, caught by
// the tests.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", n)
		}
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations are not numbered 1, 2, 3...: %d follows %d", m.version, i)
		}
	}
	return out, nil
}

// LatestVersion is the schema version this build writes.
func LatestVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Migrate brings the store's schema to this build's version: it creates
// the schema if missing and applies every pending migration, in one
// transaction holding a transaction-scoped advisory lock, so several nodes
// starting at once apply each migration exactly once (the others wait, then
// find nothing to do). A schema already migrated by a newer build is
// refused.
func (s *Store) Migrate(ctx context.Context) error {
	_, _, err := s.migrate(ctx)
	return err
}

// MigrateSchema applies the pending migrations to the schema that url and
// opts name (opts.SkipMigrations is ignored), and returns its version
// before and after: what `spool migrate` runs.
func MigrateSchema(ctx context.Context, url string, opts Options) (schema string, from, to int, err error) {
	opts.SkipMigrations = true
	opts.noVersionCheck = true
	s, err := Open(ctx, url, opts)
	if err != nil {
		return "", 0, 0, err
	}
	defer s.Close()
	from, to, err = s.migrate(ctx)
	return s.schema, from, to, err
}

func (s *Store) migrate(ctx context.Context) (from, to int, err error) {
	if err := s.begin(ctx); err != nil {
		return 0, 0, err
	}
	ms, err := migrations()
	if err != nil {
		return 0, 0, fmt.Errorf("postgres store: %w", err)
	}
	applied := 0
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The key names the schema, which need not exist yet.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('spool.migrate/' || $1, 0))`, s.schema); err != nil {
			return err
		}
		var exists bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, s.schema).Scan(&exists)
		if err != nil {
			return err
		}
		if !exists {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{s.schema}.Sanitize()); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS spool_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`)
		if err != nil {
			return err
		}
		current, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		from = current
		if err := s.compatible(current, len(ms)); err != nil {
			return err
		}
		for _, m := range ms[current:] {
			// Simple protocol: a migration file holds several statements.
			if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("applying migration %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO spool_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return err
			}
			applied++
		}
		return nil
	})
	if err != nil {
		if isOwn(err) {
			return from, from, err
		}
		return from, from, interpretError("migrating schema "+s.schema, err)
	}
	if applied > 0 {
		s.log.Info("postgres store migrated", "schema", s.schema, "applied", applied, "version", len(ms))
	}
	return from, from + applied, nil
}

// checkVersion fails unless the schema is at this build's version.
func (s *Store) checkVersion(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("postgres store: %w", err)
	}
	var exists bool
	err = s.pool.QueryRow(ctx, `SELECT to_regclass('spool_migrations') IS NOT NULL`).Scan(&exists)
	if err != nil {
		return interpretError("checking the schema version", err)
	}
	current := 0
	if exists {
		if current, err = schemaVersion(ctx, s.pool); err != nil {
			return interpretError("checking the schema version", err)
		}
	}
	if err := s.compatible(current, len(ms)); err != nil {
		return err
	}
	if current < len(ms) {
		return fmt.Errorf("postgres store: schema %s is at version %d, this build needs %d: run the migrations (spool migrate) first",
			s.schema, current, len(ms))
	}
	return nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM spool_migrations`).Scan(&v)
	return v, err
}

// versionError is a schema this build cannot use.
type versionError struct{ msg string }

func (e *versionError) Error() string { return e.msg }

func isOwn(err error) bool {
	_, ok := err.(*versionError)
	return ok
}

func (s *Store) compatible(current, latest int) error {
	if current > latest {
		return &versionError{fmt.Sprintf("postgres store: schema %s is at version %d, newer than this build's %d: upgrade spool",
			s.schema, current, latest)}
	}
	return nil
}
