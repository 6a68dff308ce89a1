-- Topic subscriptions (see topics.go).
CREATE TABLE IF NOT EXISTS spool_subscriptions (
    topic      text NOT NULL,
    queue      text NOT NULL,
    -- Message types the subscription takes; empty: every type.
    types      text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    PRIMARY KEY (topic, queue)
);
