package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/auth"
)

// With WithAPIKey the client sends its key; the errors of a server with
// keys tell unauthenticated (401) from forbidden (403).
func TestAPIKeys(t *testing.T) {
	t.Parallel()
	anon, srv := newServerWith(t, serverSetup{})
	ctx := context.Background()
	admin, err := srv.Keyring().Create(ctx, auth.CreateParams{Name: "admin", Roles: []string{"admin"}})
	require.NoError(t, err)

	_, err = anon.Queues(ctx)
	require.ErrorIs(t, err, spool.ErrUnauthorized)
	var ce *client.Error
	require.True(t, errors.As(err, &ce))
	require.Equal(t, 401, ce.Status)

	c, err := client.New(anon.URL(), client.WithAPIKey(admin.Secret))
	require.NoError(t, err)
	defer c.Close()
	viewer, err := c.CreateKey(ctx, spool.CreateKeyRequest{Name: "dash", Roles: []string{"viewer"}})
	require.NoError(t, err)
	keys, err := c.Keys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 2)

	v, err := client.New(anon.URL(), client.WithAPIKey(viewer.Secret))
	require.NoError(t, err)
	defer v.Close()
	_, err = v.Queues(ctx)
	require.NoError(t, err)
	_, err = v.Push(ctx, "q", "t", nil)
	require.ErrorIs(t, err, spool.ErrForbidden)
	require.NotErrorIs(t, err, spool.ErrUnauthorized)

	_, err = c.RevokeKey(ctx, viewer.ID)
	require.NoError(t, err)
	_, err = v.Queues(ctx)
	require.ErrorIs(t, err, spool.ErrUnauthorized)

	page, err := c.Audit(ctx, 10, "")
	require.NoError(t, err)
	require.Len(t, page.Entries, 2) // the viewer key's creation and revocation

	_, err = client.New(anon.URL(), client.WithAPIKey("a\nb"))
	require.Error(t, err)
}
