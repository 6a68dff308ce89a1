-- Webhooks: the URL a job's terminal state is POSTed to ('' for none).
-- Set at enqueue and never rewritten.
ALTER TABLE spool_jobs ADD COLUMN callback_url text NOT NULL DEFAULT '';
