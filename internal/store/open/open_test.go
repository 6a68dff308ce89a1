package open_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store/open"
	"github.com/spoolq/spool/internal/testproc"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "postgres://u@h/db", "postgresql://u:pw@h:5432/db?search_path=s"} {
		require.NoError(t, open.Check(ok), ok)
	}
	require.True(t, open.IsDatabase("postgres://h/db"))
	require.False(t, open.IsDatabase(""))
	for _, bad := range []string{"mysql://u:secret@h/db", "./data", "http://h"} {
		err := open.Check(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), "secret", "a password never shows in a message")
		require.False(t, open.IsDatabase(bad))
	}
	require.NotContains(t, open.Redact("postgres://u:secret@h/db"), "secret")
	require.NotContains(t, open.Describe(open.Options{URL: "postgres://u:secret@h/db"}), "secret")
	require.Equal(t, "embedded:/d", open.Describe(open.Options{DataDir: "/d"}))
}

func TestOpenEmbedded(t *testing.T) {
	t.Parallel()
	st, err := open.Open(t.Context(), open.Options{DataDir: t.TempDir()})
	require.NoError(t, err)
	_, err = st.Queue(t.Context(), "q")
	require.ErrorIs(t, err, spool.ErrNotFound)
	require.NoError(t, st.Close())

	_, err = open.Open(t.Context(), open.Options{URL: "mysql://h/db"})
	require.Error(t, err)
	_, err = open.Migrate(t.Context(), "")
	require.ErrorContains(t, err, "embedded store needs no migration")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = open.Open(ctx, open.Options{DataDir: t.TempDir()})
	require.ErrorIs(t, err, context.Canceled)
}

func TestOpenPostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv("SPOOL_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SPOOL_TEST_POSTGRES_URL is not set; scripts/with-postgres starts a throwaway PostgreSQL")
		}
		t.Skip("SPOOL_TEST_POSTGRES_URL is not set; scripts/with-postgres starts a throwaway PostgreSQL")
	}
	url, schema := testproc.FreshSchema(t, base, "open_")
	m, err := open.Migrate(t.Context(), url)
	require.NoError(t, err)
	require.Equal(t, schema, m.Schema)
	require.Zero(t, m.From)
	require.Positive(t, m.To)
	again, err := open.Migrate(t.Context(), url)
	require.NoError(t, err)
	require.Equal(t, m.To, again.From)
	require.Equal(t, m.To, again.To)

	st, err := open.Open(t.Context(), open.Options{URL: url})
	require.NoError(t, err)
	_, err = st.Queue(t.Context(), "q")
	require.ErrorIs(t, err, spool.ErrNotFound)
	require.NoError(t, st.Close())
}
