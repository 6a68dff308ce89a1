-- 0006: flow control (see flow.go).
--
-- Ordering keys: Lease takes a keyed job only if no job of its (queue,
-- ordering_key) not yet terminal is older (lower seq). This index answers
-- that probe reading only the key's jobs not yet terminal.
CREATE INDEX spool_jobs_ordering ON spool_jobs (queue, ordering_key, seq)
    WHERE ordering_key <> '' AND state IN ('waiting', 'scheduled', 'ready', 'active');

-- Rate limits: one durable token bucket per rate-limited queue, read and
-- written by Lease under the queue's flow lock. A queue without a row has
-- a full bucket.
CREATE TABLE spool_queue_buckets (
    queue      text COLLATE "C" PRIMARY KEY,
    tokens     double precision NOT NULL,
    updated_at timestamptz NOT NULL
);
