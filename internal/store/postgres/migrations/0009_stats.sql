-- 0009: telemetry (see stats.go). One row per queue, bucket width and
-- bucket start; every node adds what it counted to the same rows, so all
-- of them read the same figures. Histograms are arrays of counts with the
-- engine's bounds.
CREATE TABLE spool_stats (
    width_ms   bigint NOT NULL,
    queue      text COLLATE "C" NOT NULL,
    start      timestamptz NOT NULL,
    arrivals   bigint NOT NULL,
    succeeded  bigint NOT NULL,
    dead       bigint NOT NULL,
    cancelled  bigint NOT NULL,
    retries    bigint NOT NULL,
    wait_count bigint NOT NULL,
    wait_sum   double precision NOT NULL,
    wait_hist  bigint[] NOT NULL,
    run_count  bigint NOT NULL,
    run_sum    double precision NOT NULL,
    run_hist   bigint[] NOT NULL,
    samples    bigint NOT NULL,
    depth_sum  bigint NOT NULL,
    ready_sum  bigint NOT NULL,
    active_sum bigint NOT NULL,
    PRIMARY KEY (width_ms, queue, start)
);
