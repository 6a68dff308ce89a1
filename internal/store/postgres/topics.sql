-- Topic subscriptions (see topics.go). Meant to become migration 0100_topics
-- once the migrator accepts gaps in its numbering; until then topics.go
-- applies it, idempotently, before the first subscription is written.
CREATE TABLE IF NOT EXISTS spool_subscriptions (
    topic      text NOT NULL,
    queue      text NOT NULL,
    -- Message types the subscription takes; empty: every type.
    types      text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    PRIMARY KEY (topic, queue)
);
