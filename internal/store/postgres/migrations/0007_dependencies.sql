-- Job dependencies: find the waiting jobs that name a parent in depends_on.
-- Only waiting jobs are indexed, so the index holds the jobs still
-- waiting for a parent and nothing else.
CREATE INDEX spool_jobs_waiting_parents ON spool_jobs USING gin (depends_on)
    WHERE state = 'waiting';
