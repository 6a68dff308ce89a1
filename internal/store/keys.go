package store

import (
	"context"
	"time"

	"github.com/spoolq/spool"
)

// KeyRecord is an API key as stored: the listed fields, the hash of its
// secret and, when the server has an encryption key, the secret sealed
// for SigV4.
type KeyRecord struct {
	spool.Key
	SecretHash []byte
	// SealedSecret is the secret encrypted under the server's key (nil:
	// hash only).
	SealedSecret []byte
}

// Clone returns a deep copy.
func (r *KeyRecord) Clone() *KeyRecord {
	if r == nil {
		return nil
	}
	c := *r
	c.Roles = append([]string(nil), r.Roles...)
	c.Queues = append([]string(nil), r.Queues...)
	if r.Queues == nil {
		c.Queues = nil
	}
	c.SecretHash = append([]byte(nil), r.SecretHash...)
	c.SealedSecret = append([]byte(nil), r.SealedSecret...)
	if r.SealedSecret == nil {
		c.SealedSecret = nil
	}
	c.ExpiresAt = cloneTime(r.ExpiresAt)
	c.LastUsedAt = cloneTime(r.LastUsedAt)
	c.RevokedAt = cloneTime(r.RevokedAt)
	return &c
}

// AuditParams asks for one page of the audit log, newest first.
type AuditParams struct {
	// Before is the cursor: the last id of the previous page ("" for the
	// newest entries).
	Before string
	Limit  int
}

// Keys is the part of the seam that stores API keys and the audit log.
type Keys interface {
	// CreateKey stores a new key; an id already stored fails with
	// spool.ErrConflict.
	CreateKey(ctx context.Context, rec *KeyRecord) error
	// GetKey returns a key (revoked ones too), or spool.ErrNotFound.
	GetKey(ctx context.Context, id string) (*KeyRecord, error)
	// ListKeys returns every key, revoked ones included, sorted by id.
	ListKeys(ctx context.Context) ([]*KeyRecord, error)
	// RevokeKey marks a key revoked at at (a key already revoked keeps
	// its first time) and returns it, or spool.ErrNotFound.
	RevokeKey(ctx context.Context, id string, at time.Time) (*KeyRecord, error)
	// TouchKey sets a key's last-used time to at, unless it holds a later
	// one. An unknown id is not an error.
	TouchKey(ctx context.Context, id string, at time.Time) error
	// AppendAudit records an entry (its ID a new UUIDv7).
	AppendAudit(ctx context.Context, e *spool.AuditEntry) error
	// ListAudit returns a page of entries, newest (highest id) first, and
	// the cursor of the next page ("" at the end).
	ListAudit(ctx context.Context, p AuditParams) ([]spool.AuditEntry, string, error)
	// PurgeAudit deletes up to limit entries recorded strictly before
	// before and returns how many.
	PurgeAudit(ctx context.Context, before time.Time, limit int) (int, error)
}
