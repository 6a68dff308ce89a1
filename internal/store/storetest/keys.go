package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

func keyRec(id string, mods ...func(*store.KeyRecord)) *store.KeyRecord {
	k := &store.KeyRecord{
		Key: spool.Key{
			ID: id, Name: "key " + id, Roles: []string{"producer", "worker"},
			CreatedAt: t0,
		},
		SecretHash: []byte("0123456789abcdef0123456789abcdef"),
	}
	for _, m := range mods {
		m(k)
	}
	return k
}

func testKeys(t *testing.T, newStore NewStore) {
	t.Run("CreateGetList", func(t *testing.T) {
		h := begin(t, newStore)
		keys, err := h.s.ListKeys(h.ctx)
		require.NoError(t, err)
		require.Empty(t, keys)
		_, err = h.s.GetKey(h.ctx, "00000000000000aa")
		require.ErrorIs(t, err, spool.ErrNotFound)

		b := keyRec("00000000000000bb", func(k *store.KeyRecord) {
			k.Queues = []string{"reports.*", "emails"}
			k.CanViewPayloads = true
			k.ExpiresAt = ptr(at(time.Hour))
			k.SealedSecret = []byte("sealed")
		})
		a := keyRec("00000000000000aa")
		require.NoError(t, h.s.CreateKey(h.ctx, b))
		require.NoError(t, h.s.CreateKey(h.ctx, a))
		require.ErrorIs(t, h.s.CreateKey(h.ctx, keyRec("00000000000000aa")), spool.ErrConflict)

		got, err := h.s.GetKey(h.ctx, b.ID)
		require.NoError(t, err)
		want := b.Clone()
		want.SigV4 = true
		require.Equal(t, want, got)
		got, err = h.s.GetKey(h.ctx, a.ID)
		require.NoError(t, err)
		require.Equal(t, a, got)
		require.Nil(t, got.Queues)
		require.False(t, got.SigV4)

		keys, err = h.s.ListKeys(h.ctx)
		require.NoError(t, err)
		require.Len(t, keys, 2)
		require.Equal(t, a.ID, keys[0].ID)
		require.Equal(t, b.ID, keys[1].ID)
		require.Equal(t, b.SecretHash, keys[1].SecretHash)
	})

	t.Run("RevokeAndTouch", func(t *testing.T) {
		h := begin(t, newStore)
		_, err := h.s.RevokeKey(h.ctx, "00000000000000aa", t0)
		require.ErrorIs(t, err, spool.ErrNotFound)
		require.NoError(t, h.s.TouchKey(h.ctx, "00000000000000aa", t0)) // unknown: no error

		k := keyRec("00000000000000aa")
		require.NoError(t, h.s.CreateKey(h.ctx, k))
		require.NoError(t, h.s.TouchKey(h.ctx, k.ID, at(time.Minute)))
		require.NoError(t, h.s.TouchKey(h.ctx, k.ID, at(time.Second))) // older: kept
		got, err := h.s.GetKey(h.ctx, k.ID)
		require.NoError(t, err)
		require.Equal(t, at(time.Minute), *got.LastUsedAt)

		rev, err := h.s.RevokeKey(h.ctx, k.ID, at(time.Hour))
		require.NoError(t, err)
		require.Equal(t, at(time.Hour), *rev.RevokedAt)
		rev, err = h.s.RevokeKey(h.ctx, k.ID, at(2*time.Hour)) // first time kept
		require.NoError(t, err)
		require.Equal(t, at(time.Hour), *rev.RevokedAt)
		got, err = h.s.GetKey(h.ctx, k.ID)
		require.NoError(t, err)
		require.Equal(t, at(time.Hour), *got.RevokedAt)
		require.Equal(t, k.SecretHash, got.SecretHash)
		keys, err := h.s.ListKeys(h.ctx)
		require.NoError(t, err)
		require.Len(t, keys, 1) // revoked keys are listed
	})

	t.Run("Audit", func(t *testing.T) {
		h := begin(t, newStore)
		entries, next, err := h.s.ListAudit(h.ctx, store.AuditParams{Limit: 10})
		require.NoError(t, err)
		require.Empty(t, entries)
		require.Empty(t, next)
		_, _, err = h.s.ListAudit(h.ctx, store.AuditParams{})
		require.ErrorIs(t, err, spool.ErrInvalid)

		now := time.Now().UTC().Truncate(time.Microsecond)
		var ids []string
		for i := range 5 {
			e := &spool.AuditEntry{
				ID: uuid.Must(uuid.NewV7()).String(), At: now, KeyID: "00000000000000aa",
				Action: "queue.config", Resource: fmt.Sprintf("queue/q%d", i), RemoteAddr: "192.0.2.1:5000",
			}
			if i == 0 {
				e.Detail = json.RawMessage(`{"paused":true}`)
			}
			require.NoError(t, h.s.AppendAudit(h.ctx, e))
			ids = append(ids, e.ID)
		}
		page, next, err := h.s.ListAudit(h.ctx, store.AuditParams{Limit: 3})
		require.NoError(t, err)
		require.Len(t, page, 3)
		require.Equal(t, ids[4], page[0].ID) // newest first
		require.Equal(t, ids[2], page[2].ID)
		require.Equal(t, ids[2], next)
		require.Equal(t, now, page[0].At)
		require.Equal(t, "queue/q4", page[0].Resource)
		require.Equal(t, "192.0.2.1:5000", page[0].RemoteAddr)
		page, next, err = h.s.ListAudit(h.ctx, store.AuditParams{Limit: 3, Before: next})
		require.NoError(t, err)
		require.Len(t, page, 2)
		require.Empty(t, next)
		require.Equal(t, ids[0], page[1].ID)
		require.JSONEq(t, `{"paused":true}`, string(page[1].Detail))

		n, err := h.s.PurgeAudit(h.ctx, now.Add(-time.Hour), 100)
		require.NoError(t, err)
		require.Zero(t, n)
		n, err = h.s.PurgeAudit(h.ctx, now.Add(time.Hour), 2)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		page, _, err = h.s.ListAudit(h.ctx, store.AuditParams{Limit: 10})
		require.NoError(t, err)
		require.Len(t, page, 3)
		require.Equal(t, ids[2], page[2].ID) // the oldest went first
	})
}
