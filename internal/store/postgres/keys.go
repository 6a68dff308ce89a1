package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

const keyColumns = `id, name, roles, queues, can_view_payloads, secret_hash, sealed_secret, expires_at, created_at, last_used_at, revoked_at`

func scanKey(r pgx.CollectableRow) (*store.KeyRecord, error) {
	var k store.KeyRecord
	if err := r.Scan(&k.ID, &k.Name, &k.Roles, &k.Queues, &k.CanViewPayloads, &k.SecretHash, &k.SealedSecret,
		&k.ExpiresAt, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt); err != nil {
		return nil, err
	}
	if len(k.Queues) == 0 {
		k.Queues = nil
	}
	k.SigV4 = len(k.SealedSecret) > 0
	k.CreatedAt = k.CreatedAt.UTC()
	for _, t := range []**time.Time{&k.ExpiresAt, &k.LastUsedAt, &k.RevokedAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return &k, nil
}

// CreateKey stores a new key.
func (s *Store) CreateKey(ctx context.Context, rec *store.KeyRecord) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if rec == nil || rec.ID == "" || len(rec.SecretHash) == 0 {
		return spool.Invalidf("a key needs an id and a secret hash")
	}
	queues := rec.Queues
	if queues == nil {
		queues = []string{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO spool_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		rec.ID, rec.Name, rec.Roles, queues, rec.CanViewPayloads, rec.SecretHash, rec.SealedSecret,
		utcPtr(rec.ExpiresAt), rec.CreatedAt.UTC(), utcPtr(rec.LastUsedAt), utcPtr(rec.RevokedAt))
	if err != nil {
		return interpretError("storing key "+rec.ID, err)
	}
	return nil
}

// GetKey returns one key.
func (s *Store) GetKey(ctx context.Context, id string) (*store.KeyRecord, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM spool_keys WHERE id = $1`, id)
	if err != nil {
		return nil, interpretError("reading key", err)
	}
	k, err := pgx.CollectExactlyOneRow(rows, scanKey)
	if err != nil {
		if err == pgx.ErrNoRows {
			return nil, spool.NotFoundf("no key with id %q", id)
		}
		return nil, interpretError("reading key", err)
	}
	return k, nil
}

// ListKeys returns every key by id.
func (s *Store) ListKeys(ctx context.Context) ([]*store.KeyRecord, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM spool_keys ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, interpretError("listing keys", err)
	}
	out, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, interpretError("listing keys", err)
	}
	return out, nil
}

// RevokeKey marks a key revoked (keeping the first revocation time).
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) (*store.KeyRecord, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `UPDATE spool_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING `+keyColumns, id, at.UTC())
	if err != nil {
		return nil, interpretError("revoking key", err)
	}
	k, err := pgx.CollectExactlyOneRow(rows, scanKey)
	if err != nil {
		if err == pgx.ErrNoRows {
			return nil, spool.NotFoundf("no key with id %q", id)
		}
		return nil, interpretError("revoking key", err)
	}
	return k, nil
}

// TouchKey advances a key's last-used time.
func (s *Store) TouchKey(ctx context.Context, id string, at time.Time) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `UPDATE spool_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`, id, at.UTC())
	return interpretError("recording a key's use", err)
}

// AppendAudit records an audit entry.
func (s *Store) AppendAudit(ctx context.Context, e *spool.AuditEntry) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if e == nil || e.ID == "" {
		return spool.Invalidf("an audit entry needs an id")
	}
	var detail any
	if len(e.Detail) > 0 {
		detail = string(e.Detail)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO spool_audit (id, at, key_id, action, resource, remote_addr, detail) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)`,
		e.ID, e.At.UTC(), e.KeyID, e.Action, e.Resource, e.RemoteAddr, detail)
	return interpretError("recording audit entry", err)
}

// ListAudit returns a page of the audit log, newest first.
func (s *Store) ListAudit(ctx context.Context, p store.AuditParams) ([]spool.AuditEntry, string, error) {
	if err := s.begin(ctx); err != nil {
		return nil, "", err
	}
	if p.Limit <= 0 {
		return nil, "", spool.Invalidf("list limit must be positive, got %d", p.Limit)
	}
	var before any
	if p.Before != "" {
		before = p.Before
	}
	rows, err := s.pool.Query(ctx, `SELECT id::text, at, key_id, action, resource, remote_addr, detail::text FROM spool_audit
		WHERE $1::uuid IS NULL OR id < $1::uuid ORDER BY id DESC LIMIT $2`, before, p.Limit+1)
	if err != nil {
		return nil, "", interpretError("listing the audit log", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (spool.AuditEntry, error) {
		var e spool.AuditEntry
		var detail *string
		if err := r.Scan(&e.ID, &e.At, &e.KeyID, &e.Action, &e.Resource, &e.RemoteAddr, &detail); err != nil {
			return e, err
		}
		e.At = e.At.UTC()
		if detail != nil {
			e.Detail = json.RawMessage(*detail)
		}
		return e, nil
	})
	if err != nil {
		return nil, "", interpretError("listing the audit log", err)
	}
	next := ""
	if len(out) > p.Limit {
		out = out[:p.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// PurgeAudit deletes entries recorded before before.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, spool.Invalidf("purge limit must be positive, got %d", limit)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM spool_audit WHERE id IN (SELECT id FROM spool_audit WHERE at < $1 ORDER BY at LIMIT $2)`, before.UTC(), limit)
	if err != nil {
		return 0, interpretError("purging the audit log", err)
	}
	return int(tag.RowsAffected()), nil
}
