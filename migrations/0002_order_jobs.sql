-- An order's job is looked up by its id (GET /v1/jobs/{id}); orders without a currency of
-- their own store '' rather than NULL.
CREATE INDEX orders_by_job ON orders (job_id);
