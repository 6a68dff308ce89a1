-- Cron schedules (see schedules.go). The definition and the counters are
-- one JSON document, read and written whole; rev is the compare-and-set
-- revision. FireSchedule locks the row (FOR UPDATE) and checks rev in the
-- transaction that inserts the firing's job, so one node wins each firing.
CREATE TABLE IF NOT EXISTS spool_schedules (
    name         text PRIMARY KEY,
    rev          bigint NOT NULL,
    next_fire_at timestamptz,
    doc          jsonb NOT NULL
);
