package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
	"github.com/spoolq/spool/internal/store/embedded"
)

func newKeyring(t *testing.T, sealer *auth.Sealer, now func() time.Time) *auth.Keyring {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return auth.NewKeyring(auth.KeyringConfig{Store: st, Sealer: sealer, Now: now})
}

func TestKeyringAuthenticateAndSigV4(t *testing.T) {
	t.Parallel()
	key, err := auth.ParseSealerKey(strings.Repeat("0f", 32))
	require.NoError(t, err)
	sealer, err := auth.NewSealer(key)
	require.NoError(t, err)
	now := time.Now()
	clock := func() time.Time { return now }
	k := newKeyring(t, sealer, clock)
	ctx := context.Background()

	required, err := k.Required(ctx)
	require.NoError(t, err)
	require.False(t, required)

	ck, err := k.Create(ctx, auth.CreateParams{Name: "sqs", Roles: []string{"producer", "worker", "producer"}, Queues: []string{"orders.*"}, Expires: time.Hour})
	require.NoError(t, err)
	require.Equal(t, []string{"producer", "worker"}, ck.Roles)
	require.True(t, ck.SigV4)
	required, err = k.Required(ctx)
	require.NoError(t, err)
	require.True(t, required)

	p, err := k.Authenticate(ctx, ck.Secret)
	require.NoError(t, err)
	require.Equal(t, ck.ID, p.KeyID)
	require.True(t, p.Can(auth.Work))
	require.True(t, p.Reaches("orders.eu"))
	require.False(t, p.Reaches("billing"))

	secret, p2, err := k.SigV4(ctx, ck.ID)
	require.NoError(t, err)
	require.Equal(t, ck.Secret, secret)
	require.Equal(t, p.Roles, p2.Roles)

	for _, bad := range []string{"", "nope", ck.Secret + "x", strings.Replace(ck.Secret, "_", "-", 1)} {
		_, err := k.Authenticate(ctx, bad)
		require.ErrorIs(t, err, spool.ErrUnauthorized, bad)
		require.NotContains(t, err.Error(), ck.Secret)
	}
	_, _, err = k.SigV4(ctx, "0000000000000000")
	require.ErrorIs(t, err, spool.ErrUnauthorized)

	// Last use is written by FlushUses.
	require.NoError(t, k.FlushUses(ctx))
	keys, err := k.List(ctx)
	require.NoError(t, err)
	require.NotNil(t, keys[0].LastUsedAt)

	// Expired, then revoked.
	now = now.Add(2 * time.Hour)
	_, err = k.Authenticate(ctx, ck.Secret)
	require.ErrorIs(t, err, spool.ErrUnauthorized)
	now = now.Add(-2 * time.Hour)
	_, err = k.Revoke(ctx, ck.ID)
	require.NoError(t, err)
	_, err = k.Authenticate(ctx, ck.Secret)
	require.ErrorIs(t, err, spool.ErrUnauthorized)
	_, _, err = k.SigV4(ctx, ck.ID)
	require.ErrorIs(t, err, spool.ErrUnauthorized)

	_, err = k.Create(ctx, auth.CreateParams{Name: "x", Roles: []string{"root"}})
	require.ErrorIs(t, err, spool.ErrInvalid)
}

func TestKeyringWithoutSealer(t *testing.T) {
	t.Parallel()
	k := newKeyring(t, nil, nil)
	ctx := context.Background()
	ck, err := k.Create(ctx, auth.CreateParams{Name: "plain", Roles: []string{"viewer"}})
	require.NoError(t, err)
	require.False(t, ck.SigV4)
	_, _, err = k.SigV4(ctx, ck.ID)
	require.True(t, errors.Is(err, auth.ErrNoSealer))
}
