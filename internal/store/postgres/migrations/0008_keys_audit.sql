-- API keys and the audit log (see keys.go). A key's secret is never
-- stored: secret_hash is its SHA-256, sealed_secret (optional) its
-- AES-GCM encryption under the server's key for SigV4.
CREATE TABLE IF NOT EXISTS spool_keys (
    id                text PRIMARY KEY,
    name              text NOT NULL,
    roles             text[] NOT NULL,
    queues            text[] NOT NULL DEFAULT '{}',
    can_view_payloads boolean NOT NULL DEFAULT false,
    secret_hash       bytea NOT NULL,
    sealed_secret     bytea,
    expires_at        timestamptz,
    created_at        timestamptz NOT NULL,
    last_used_at      timestamptz,
    revoked_at        timestamptz
);

-- Admin actions, newest first by id (a UUIDv7, time-ordered).
CREATE TABLE IF NOT EXISTS spool_audit (
    id          uuid PRIMARY KEY,
    at          timestamptz NOT NULL,
    key_id      text NOT NULL,
    action      text NOT NULL,
    resource    text NOT NULL,
    remote_addr text NOT NULL,
    detail      jsonb
);
CREATE INDEX IF NOT EXISTS spool_audit_at ON spool_audit (at);
