package spool

import (
	"encoding/json"
	"time"
)

// Key is an API key as listed: never its secret.
type Key struct {
	// ID is the key's public id (16 hex digits).
	ID string `json:"id"`
	// Name says what the key is for.
	Name string `json:"name"`
	// Roles are admin, producer, worker and viewer; a key holds one or
	// more.
	Roles []string `json:"roles"`
	// Queues are name patterns ("reports.*", "emails") that limit the
	// key to those queues and topics; empty: every queue and topic.
	Queues []string `json:"queues,omitempty"`
	// CanViewPayloads lets a viewer key see job payloads and results.
	CanViewPayloads bool `json:"can_view_payloads"`
	// SigV4 says the secret is also stored encrypted, so the key can sign
	// SQS API requests.
	SigV4      bool       `json:"sigv4"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// CreateKeyRequest is the body of POST /v1/keys.
type CreateKeyRequest struct {
	Name            string   `json:"name"`
	Roles           []string `json:"roles"`
	Queues          []string `json:"queues,omitempty"`
	CanViewPayloads bool     `json:"can_view_payloads,omitempty"`
	// Expires is the key's lifetime from now ("720h"); absent: no expiry.
	Expires *Duration `json:"expires,omitempty"`
}

// CreatedKey is the answer of POST /v1/keys: the key and its secret, shown
// this once.
type CreatedKey struct {
	Key
	// Secret is what clients send as "Authorization: Bearer <secret>".
	Secret string `json:"secret"`
}

// KeysResponse is the answer of GET /v1/keys.
type KeysResponse struct {
	Keys []Key `json:"keys"`
}

// AuditEntry is one recorded admin action.
type AuditEntry struct {
	// ID is time-ordered (a UUIDv7).
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// KeyID is who acted ("" while the server ran without keys).
	KeyID string `json:"key_id"`
	// Action names what was done ("key.create", "queue.config", ...).
	Action string `json:"action"`
	// Resource is what it was done to ("queue/emails", "key/<id>").
	Resource   string `json:"resource"`
	RemoteAddr string `json:"remote_addr"`
	// Detail holds the action's parameters, when it has any.
	Detail json.RawMessage `json:"detail,omitempty"`
}

// AuditResponse is a page of GET /v1/audit, newest first.
type AuditResponse struct {
	Entries    []AuditEntry `json:"entries"`
	NextCursor string       `json:"next_cursor,omitempty"`
}
