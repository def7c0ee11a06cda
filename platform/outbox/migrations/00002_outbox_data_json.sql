-- The payload is kept as written (json, not jsonb): the relay publishes
-- the rows handed to it at commit as they are, and those it reads back
-- must be the same bytes; nothing queries inside it.
-- +goose Up
ALTER TABLE outbox ALTER COLUMN data TYPE json USING data::json;

-- +goose Down
ALTER TABLE outbox ALTER COLUMN data TYPE jsonb USING data::jsonb;
