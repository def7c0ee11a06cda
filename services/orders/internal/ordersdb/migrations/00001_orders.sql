-- +goose Up
-- The read model: one row per order, kept in step with the event store in
-- the same transaction. The events table (platform/eventstore) is the
-- source of truth; this table can be rebuilt from it.
CREATE TABLE orders_view (
    order_id      text PRIMARY KEY,
    customer_id   text        NOT NULL,
    status        text        NOT NULL,
    reason        text        NOT NULL DEFAULT '',
    items         jsonb       NOT NULL,
    total_cents   bigint      NOT NULL,
    version       bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    trace_context jsonb       NOT NULL DEFAULT '{}' -- of the request that placed it
);

CREATE INDEX orders_view_pending ON orders_view (created_at) WHERE status = 'PENDING';

CREATE TABLE idempotency_keys (
    key         text PRIMARY KEY,
    fingerprint bytea       NOT NULL,
    order_id    text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE orders_view;
