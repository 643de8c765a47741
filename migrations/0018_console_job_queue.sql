-- Console jobs (a retry of many dead letters, a replay) are run by the
-- background process (the worker on Cloud Run), not by the web process that
-- took the request: Cloud Run may throttle or stop that one once it has
-- answered, which would leave a job half done and "running" for ever. A job
-- waits with its kind and what it needs; one runner at a time (by lease) takes
-- the oldest unfinished, and a job whose runner died is taken again from the
-- start (both kinds are idempotent).
ALTER TABLE console_jobs ADD COLUMN kind text CHECK (kind IN ('retry', 'replay'));
ALTER TABLE console_jobs ADD COLUMN params jsonb NOT NULL DEFAULT '{}';
ALTER TABLE console_jobs ADD COLUMN picked_at timestamptz;

-- Jobs from before, run by the process that took the request: whatever did not
-- finish then never will.
UPDATE console_jobs SET finished_at = now(), what = what || ' (interrupted)'
WHERE finished_at IS NULL;

CREATE INDEX console_jobs_waiting ON console_jobs (id) WHERE finished_at IS NULL;
