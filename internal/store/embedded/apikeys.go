package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// API keys: k/<id> → the JSON of keyValue. Audit entries: a/<uuidv7> → the
// JSON of a spool.AuditEntry; their ids are time-ordered, so the log reads
// newest first by iterating backwards. Neither has an in-memory index: keys
// are few and cached by the server, the log is read page by page.
func apiKeyKey(id string) []byte { return key(prefixAPIKey, id) }
func auditKey(id string) []byte  { return key(prefixAudit, id) }

type keyValue struct {
	spool.Key
	SecretHash   []byte `json:"secret_hash"`
	SealedSecret []byte `json:"sealed_secret,omitempty"`
}

func encodeKey(r *store.KeyRecord) ([]byte, error) {
	b, err := json.Marshal(keyValue{Key: r.Key, SecretHash: r.SecretHash, SealedSecret: r.SealedSecret})
	if err != nil {
		return nil, spool.Invalidf("key %q cannot be stored: %v", r.ID, err)
	}
	return b, nil
}

func decodeKey(id string, b []byte) (*store.KeyRecord, error) {
	var v keyValue
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("embedded store: decoding key %q: %w", id, err)
	}
	v.Key.SigV4 = len(v.SealedSecret) > 0
	return &store.KeyRecord{Key: v.Key, SecretHash: v.SecretHash, SealedSecret: v.SealedSecret}, nil
}

// readKey reads a key from Pebble (nil if there is none). Call with s.mu
// held.
func (s *Store) readKey(id string) (*store.KeyRecord, error) {
	v, closer, err := s.db.Get(apiKeyKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, translate("reading key", err)
	}
	defer func() { _ = closer.Close() }()
	return decodeKey(id, v)
}

// CreateKey stores a new key.
func (s *Store) CreateKey(ctx context.Context, rec *store.KeyRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rec == nil || rec.ID == "" || len(rec.SecretHash) == 0 {
		return spool.Invalidf("a key needs an id and a secret hash")
	}
	return s.changeKey(rec.ID, "storing key", func(cur *store.KeyRecord) (*store.KeyRecord, error) {
		if cur != nil {
			return nil, spool.Conflictf("key %q already exists", rec.ID)
		}
		return rec, nil
	})
}

// changeKey applies fn to the stored key (nil: none) and writes what it
// returns (nil: nothing), durably.
func (s *Store) changeKey(id, op string, fn func(cur *store.KeyRecord) (*store.KeyRecord, error)) error {
	a, err := func() (a after, err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.usable(); err != nil {
			return a, err
		}
		cur, err := s.readKey(id)
		if err != nil {
			return a, err
		}
		next, err := fn(cur)
		if err != nil || next == nil {
			return a, err
		}
		enc, err := encodeKey(next)
		if err != nil {
			return a, err
		}
		t := s.begin()
		t.set(apiKeyKey(id), enc)
		a.commit, err = s.apply(t, op)
		return a, err
	}()
	if err != nil {
		return err
	}
	return s.finish(&a)
}

// GetKey returns one key.
func (s *Store) GetKey(ctx context.Context, id string) (*store.KeyRecord, error) {
	return getOne(ctx, s, func() (*store.KeyRecord, error) { return s.readKey(id) },
		func() error { return spool.NotFoundf("no key with id %q", id) })
}

// ListKeys returns every key by id.
func (s *Store) ListKeys(ctx context.Context) ([]*store.KeyRecord, error) {
	return listAll(ctx, s, prefixAPIKey, decodeKey)
}

// RevokeKey marks a key revoked.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) (*store.KeyRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *store.KeyRecord
	err := s.changeKey(id, "revoking key", func(cur *store.KeyRecord) (*store.KeyRecord, error) {
		if cur == nil {
			return nil, spool.NotFoundf("no key with id %q", id)
		}
		out = cur
		if cur.RevokedAt != nil {
			return nil, nil
		}
		t := at.UTC()
		cur.RevokedAt = &t
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TouchKey advances a key's last-used time.
func (s *Store) TouchKey(ctx context.Context, id string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.changeKey(id, "touching key", func(cur *store.KeyRecord) (*store.KeyRecord, error) {
		if cur == nil || (cur.LastUsedAt != nil && !cur.LastUsedAt.Before(at)) {
			return nil, nil
		}
		t := at.UTC()
		cur.LastUsedAt = &t
		return cur, nil
	})
}

// AppendAudit records an audit entry.
func (s *Store) AppendAudit(ctx context.Context, e *spool.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e == nil || e.ID == "" {
		return spool.Invalidf("an audit entry needs an id")
	}
	enc, err := json.Marshal(e)
	if err != nil {
		return spool.Invalidf("audit entry cannot be stored: %v", err)
	}
	a, err := s.writeKey(auditKey(e.ID), enc, "recording audit entry")
	if err != nil {
		return err
	}
	return s.finish(&a)
}

// ListAudit returns a page of the audit log, newest first.
func (s *Store) ListAudit(ctx context.Context, p store.AuditParams) ([]spool.AuditEntry, string, error) {
	if p.Limit <= 0 {
		return nil, "", spool.Invalidf("list limit must be positive, got %d", p.Limit)
	}
	upper := prefixEnd(prefixAudit)
	if p.Before != "" {
		upper = auditKey(p.Before)
	}
	var out []spool.AuditEntry
	more := false
	err := s.readPebble(ctx, func() error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefixAudit), UpperBound: upper})
		if err != nil {
			return translate("listing the audit log", err)
		}
		for ok := it.Last(); ok; ok = it.Prev() {
			if len(out) == p.Limit {
				more = true
				break
			}
			var e spool.AuditEntry
			v, err := it.ValueAndErr()
			if err == nil {
				err = json.Unmarshal(v, &e)
			}
			if err != nil {
				_ = it.Close()
				return fmt.Errorf("embedded store: decoding audit entry %q: %w", it.Key(), err)
			}
			out = append(out, e)
		}
		if err := it.Close(); err != nil {
			return translate("listing the audit log", err)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if more {
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// PurgeAudit deletes entries recorded before before. Their ids are
// UUIDv7s, so the oldest come first and the scan stops at the first entry
// recorded at or after before.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, spool.Invalidf("purge limit must be positive, got %d", limit)
	}
	a, n, err := func() (a after, n int, err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.usable(); err != nil {
			return a, 0, err
		}
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefixAudit), UpperBound: prefixEnd(prefixAudit)})
		if err != nil {
			return a, 0, translate("purging the audit log", err)
		}
		t := s.begin()
		for ok := it.First(); ok && n < limit; ok = it.Next() {
			id := string(it.Key()[len(prefixAudit):])
			if u, err := uuid.Parse(id); err == nil && u.Version() == 7 {
				sec, nsec := u.Time().UnixTime()
				if !time.Unix(sec, nsec).Before(before) {
					break
				}
			}
			t.delete(bytesClone(it.Key()))
			n++
		}
		if err := it.Close(); err != nil {
			t.rollback()
			return a, 0, translate("purging the audit log", err)
		}
		if n == 0 {
			t.rollback()
			return a, 0, nil
		}
		a.commit, err = s.apply(t, "purging the audit log")
		return a, n, err
	}()
	if err != nil {
		return 0, err
	}
	return n, s.finish(&a)
}

func bytesClone(b []byte) []byte { return append([]byte(nil), b...) }
