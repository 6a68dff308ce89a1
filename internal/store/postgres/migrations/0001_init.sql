-- 0001: jobs, queues, per-queue state counters and the triggers that keep
-- them. Runs with search_path set to the store's schema; see doc.go for why
-- each table, column and index is there.

CREATE TABLE spool_queues (
    name   text COLLATE "C" PRIMARY KEY,
    -- Only the settings changed by PATCH (spool.QueueConfig as JSON).
    config jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE spool_jobs (
    id               text COLLATE "C" PRIMARY KEY,
    queue            text COLLATE "C" NOT NULL,
    state            text NOT NULL CHECK (state IN
                         ('waiting', 'scheduled', 'ready', 'active', 'succeeded', 'dead', 'cancelled')),
    priority         integer NOT NULL,
    -- Insert order: FIFO within a priority. CACHE 1 (the default) keeps it
    -- in insert order across sessions too.
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    rev              bigint NOT NULL,
    attempt          integer NOT NULL,
    max_attempts     integer NOT NULL,
    run_at           timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    ready_at         timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    lease_expires_at timestamptz,
    timeout_ns       bigint NOT NULL DEFAULT 0,
    -- Both NULL: no per-job backoff (spool.Job.Backoff == nil).
    backoff_base_ns  bigint,
    backoff_max_ns   bigint,
    cancel_requested boolean NOT NULL DEFAULT false,
    type             text NOT NULL,
    token            text NOT NULL DEFAULT '',
    worker           text NOT NULL DEFAULT '',
    idempotency_key  text COLLATE "C",
    ordering_key     text NOT NULL DEFAULT '',
    depends_on       text[],
    tags             text[],
    -- json, not jsonb: kept byte for byte, never queried by the store.
    errors           json,
    progress         json,
    -- Bytes exactly as given; the store never looks inside.
    payload          bytea,
    result           bytea
) WITH (
    -- Almost every write changes state (an indexed column), so updates are
    -- never HOT: keep vacuum close behind to hold dead index entries (which
    -- a queue scan must skip) down.
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);

-- Lease: ready jobs of a queue, higher priority first, then FIFO.
CREATE INDEX spool_jobs_ready ON spool_jobs (queue, priority DESC, seq)
    WHERE state = 'ready';
-- OldestReady of Queue/Queues.
CREATE INDEX spool_jobs_ready_since ON spool_jobs (queue, (coalesce(ready_at, created_at)))
    WHERE state = 'ready';
-- PromoteDue.
CREATE INDEX spool_jobs_scheduled ON spool_jobs (run_at)
    WHERE state = 'scheduled';
-- ExpiredLeases: a missing expiry sorts first (expired, never stuck).
CREATE INDEX spool_jobs_active ON spool_jobs ((coalesce(lease_expires_at, '-infinity'::timestamptz)), id)
    WHERE state = 'active';
-- Purge: oldest finished first; a missing finish time sorts first.
CREATE INDEX spool_jobs_terminal ON spool_jobs (queue, (coalesce(finished_at, '-infinity'::timestamptz)))
    WHERE state IN ('succeeded', 'dead', 'cancelled');
-- Idempotency keys are unique per queue.
CREATE UNIQUE INDEX spool_jobs_idempotency ON spool_jobs (queue, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- ListJobs (one state, or every state through a merge of the seven).
CREATE INDEX spool_jobs_list ON spool_jobs (queue, state, id);

-- Jobs per queue and state, kept by the triggers below in the transaction
-- of every write, so admission (max_depth) and queue counts read a few rows
-- instead of counting jobs. Each statement adds its deltas to one of 32
-- shards picked at random, so that concurrent writers to one queue seldom
-- wait on the same row; readers sum the shards.
CREATE TABLE spool_queue_counts (
    queue text COLLATE "C" NOT NULL,
    state text NOT NULL,
    shard smallint NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (queue, state, shard)
) WITH (fillfactor = 50);

-- The triggers are statement-level, with transition tables: one counter
-- upsert per statement whatever its number of rows, rows in (queue, state)
-- order so that concurrent statements lock counters in one order, and
-- nothing at all for writes that change no state (heartbeats).

CREATE FUNCTION spool_jobs_counts_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_shard smallint := floor(random() * 32);
BEGIN
    INSERT INTO spool_queues (name)
    SELECT DISTINCT queue FROM new_rows ORDER BY 1
    ON CONFLICT DO NOTHING;
    INSERT INTO spool_queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, v_shard, count(*) FROM new_rows
    GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION spool_jobs_counts_update() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_shard smallint := floor(random() * 32);
BEGIN
    WITH d AS (
        SELECT queue, state, sum(delta) AS delta
        FROM (
            SELECT queue, state, -1 AS delta FROM old_rows
            UNION ALL
            SELECT queue, state, 1 FROM new_rows
        ) x
        GROUP BY queue, state
        HAVING sum(delta) <> 0
    ), q AS (
        -- A job moved to a queue never used before.
        INSERT INTO spool_queues (name)
        SELECT DISTINCT queue FROM d WHERE delta > 0 ORDER BY 1
        ON CONFLICT DO NOTHING
    )
    INSERT INTO spool_queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, v_shard, delta FROM d ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION spool_jobs_counts_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_shard smallint := floor(random() * 32);
BEGIN
    INSERT INTO spool_queue_counts AS c (queue, state, shard, n)
    SELECT queue, state, v_shard, -count(*) FROM old_rows
    GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER spool_jobs_counts_insert AFTER INSERT ON spool_jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION spool_jobs_counts_insert();
CREATE TRIGGER spool_jobs_counts_update AFTER UPDATE ON spool_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION spool_jobs_counts_update();
CREATE TRIGGER spool_jobs_counts_delete AFTER DELETE ON spool_jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION spool_jobs_counts_delete();

-- spool_check_depth is Insert's admission check, called by the insert
-- statement once its rows are in (and before its counter trigger runs):
-- gains[i] new jobs not yet terminal go to queues[i], whose max_depth is
-- limits[i]. A full queue raises SQLSTATE SP001 with the depth in DETAIL,
-- which aborts the whole insert.
--
-- It is exact under concurrent producers, and keeps group commit for queues
-- far from full. Each queue has `tickets` advisory locks (transaction-scoped,
-- keyed by schema, queue and ticket number):
--
--   * Fast path, when the queue is far from full (depth + gain + tickets *
--     max_fast_gain <= limit) and the gain is at most max_fast_gain: hold ONE
--     ticket (any free one), recount, and go. At most `tickets` fast inserts
--     of a queue are in flight, each adding at most max_fast_gain jobs, so
--     committed depth + everything in flight stays within the limit.
--   * Exclusive path, near the limit, for large batches, or when `exclusive`
--     is set: hold EVERY ticket of the queue, so no other insert into it is
--     in flight, then count exactly.
--
-- Counts are read with a fresh snapshot once the locks are held (each
-- statement of a VOLATILE function takes one under READ COMMITTED), so they
-- include every insert that committed before. Queues are handled in name
-- order and tickets in number order, and a transaction only ever waits for
-- a lock ordered after every lock it holds: no deadlock. The one exception,
-- a fast path whose recount finds the queue has come close to its limit,
-- cannot wait for the other tickets while holding one: it raises SP003 and
-- the caller runs the insert again with exclusive set.
CREATE FUNCTION spool_check_depth(queues text[], gains bigint[], limits bigint[],
                                  exclusive boolean, tickets integer, max_fast_gain bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
    headroom bigint := tickets * max_fast_gain;
    prefix text := 'spool.depth/' || current_schema() || '/';
    i integer;
    t integer;
    start integer;
    depth bigint;
    fast boolean;
    got boolean;
BEGIN
    IF coalesce(cardinality(queues), 0) = 0 THEN
        RETURN true;
    END IF;
    FOR i IN SELECT u.ord FROM unnest(queues) WITH ORDINALITY AS u(q, ord) ORDER BY u.q COLLATE "C" LOOP
        fast := false;
        IF NOT exclusive AND gains[i] <= max_fast_gain THEN
            SELECT coalesce(sum(n), 0) INTO depth FROM spool_queue_counts
            WHERE queue = queues[i] AND state IN ('waiting', 'scheduled', 'ready', 'active');
            fast := depth + gains[i] + headroom <= limits[i];
        END IF;
        IF fast THEN
            start := floor(random() * tickets);
            got := false;
            FOR t IN 0 .. tickets - 1 LOOP
                got := pg_try_advisory_xact_lock(hashtextextended(prefix || queues[i], (start + t) % tickets));
                EXIT WHEN got;
            END LOOP;
            IF NOT got THEN
                PERFORM pg_advisory_xact_lock(hashtextextended(prefix || queues[i], start));
            END IF;
            SELECT coalesce(sum(n), 0) INTO depth FROM spool_queue_counts
            WHERE queue = queues[i] AND state IN ('waiting', 'scheduled', 'ready', 'active');
            IF depth + gains[i] + headroom > limits[i] THEN
                RAISE EXCEPTION 'queue % came close to its limit: admit exclusively', queues[i]
                    USING ERRCODE = 'SP003';
            END IF;
        ELSE
            FOR t IN 0 .. tickets - 1 LOOP
                PERFORM pg_advisory_xact_lock(hashtextextended(prefix || queues[i], t));
            END LOOP;
            SELECT coalesce(sum(n), 0) INTO depth FROM spool_queue_counts
            WHERE queue = queues[i] AND state IN ('waiting', 'scheduled', 'ready', 'active');
            IF depth + gains[i] > limits[i] THEN
                RAISE EXCEPTION 'queue % is full', queues[i] USING
                    ERRCODE = 'SP001',
                    DETAIL = json_build_object('queue', queues[i], 'depth', depth, 'max_depth', limits[i])::text;
            END IF;
        END IF;
    END LOOP;
    RETURN true;
END
$$;

-- spool_fail raises SQLSTATE code with message: a statement calls it to
-- abort its transaction on a condition it detects.
CREATE FUNCTION spool_fail(code text, message text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = code;
END
$$;
