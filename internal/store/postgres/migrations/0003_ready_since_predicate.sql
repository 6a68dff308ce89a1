-- OldestReady's index gets a predicate that only OldestReady's query
-- states, so the planner can never pick it for Lease (a partial index is
-- used only when the query implies its predicate). Lease then always walks
-- spool_jobs_ready in (priority, seq) order, whatever the statistics say,
-- instead of sorting a queue's ready jobs on every call.
DROP INDEX spool_jobs_ready_since;
CREATE INDEX spool_jobs_ready_since ON spool_jobs (queue, (coalesce(ready_at, created_at)))
    WHERE state = 'ready' AND coalesce(ready_at, created_at) IS NOT NULL;
