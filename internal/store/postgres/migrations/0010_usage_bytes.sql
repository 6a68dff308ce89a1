-- 0010: the payload bytes of the jobs in each (queue, state), next to their
-- number, for the server-wide budget (store.Usage): the counter triggers
-- add octet_length(payload), which reads a TOASTed value's header only.

ALTER TABLE spool_queue_counts ADD COLUMN bytes bigint NOT NULL DEFAULT 0;

-- The jobs already stored, counted once (in shard 0).
INSERT INTO spool_queue_counts AS c (queue, state, shard, n, bytes)
SELECT queue, state, 0, 0, coalesce(sum(octet_length(payload)), 0) FROM spool_jobs
GROUP BY queue, state ORDER BY queue, state
ON CONFLICT (queue, state, shard) DO UPDATE SET bytes = c.bytes + excluded.bytes;

CREATE OR REPLACE FUNCTION spool_jobs_counts_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_shard smallint := floor(random() * 32);
BEGIN
    INSERT INTO spool_queues (name)
    SELECT DISTINCT queue FROM new_rows ORDER BY 1
    ON CONFLICT DO NOTHING;
    INSERT INTO spool_queue_counts AS c (queue, state, shard, n, bytes)
    SELECT queue, state, v_shard, count(*), coalesce(sum(octet_length(payload)), 0) FROM new_rows
    GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + excluded.n, bytes = c.bytes + excluded.bytes;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION spool_jobs_counts_update() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_shard smallint := floor(random() * 32);
BEGIN
    WITH d AS (
        SELECT queue, state, sum(delta) AS delta, sum(bytes) AS bytes
        FROM (
            SELECT queue, state, -1 AS delta, -coalesce(octet_length(payload), 0) AS bytes FROM old_rows
            UNION ALL
            SELECT queue, state, 1, coalesce(octet_length(payload), 0) FROM new_rows
        ) x
        GROUP BY queue, state
        HAVING sum(delta) <> 0 OR sum(bytes) <> 0
    ), q AS (
        -- A job moved to a queue never used before.
        INSERT INTO spool_queues (name)
        SELECT DISTINCT queue FROM d WHERE delta > 0 ORDER BY 1
        ON CONFLICT DO NOTHING
    )
    INSERT INTO spool_queue_counts AS c (queue, state, shard, n, bytes)
    SELECT queue, state, v_shard, delta, bytes FROM d ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + excluded.n, bytes = c.bytes + excluded.bytes;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION spool_jobs_counts_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_shard smallint := floor(random() * 32);
BEGIN
    INSERT INTO spool_queue_counts AS c (queue, state, shard, n, bytes)
    SELECT queue, state, v_shard, -count(*), -coalesce(sum(octet_length(payload)), 0) FROM old_rows
    GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + excluded.n, bytes = c.bytes + excluded.bytes;
    RETURN NULL;
END
$$;
