-- One business transaction as the saga's steps make them: BEGIN, one
-- jsonb row, COMMIT (three round trips). make bench's PostgreSQL ceiling.
BEGIN;
INSERT INTO bench_rows (payload) VALUES ('{"event":"orders.placed","order_id":"4b0f2c8e-5a7d-4e43-9a35-1f1c2d3e4f5a","customer_id":"c-123","items":[{"sku":"SKU-0023","quantity":2,"unit_price_cents":1999}],"total_cents":3998,"currency":"USD"}'::jsonb);
COMMIT;
