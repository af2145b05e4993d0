-- Jobs in flight (leased), found without scanning the queue: the dispatcher asks when the
-- next lease lapses on every pass.
CREATE INDEX delivery_jobs_leased ON delivery_jobs(lease_until) WHERE lease_until IS NOT NULL;
