-- +goose Up
-- The read model (CQRS query side), filled by the projector from the event
-- store; the projector backfills it from event zero on first start. "IF
-- NOT EXISTS": databases made before this file moved here already have it
-- (from the orders set's 00002).
CREATE TABLE IF NOT EXISTS order_summaries (
    order_id      text PRIMARY KEY,
    customer_id   text        NOT NULL,
    status        text        NOT NULL,
    reason        text        NOT NULL DEFAULT '',
    items         jsonb       NOT NULL,
    total_cents   bigint      NOT NULL,
    currency      text        NOT NULL,
    notes         int         NOT NULL DEFAULT 0,
    version       bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    trace_context jsonb       NOT NULL DEFAULT '{}' -- of the request that placed it
);

-- Newest first, by customer, by status: the list endpoint's keyset pages.
CREATE INDEX IF NOT EXISTS order_summaries_recent ON order_summaries (created_at DESC, order_id DESC);
CREATE INDEX IF NOT EXISTS order_summaries_customer ON order_summaries (customer_id, created_at DESC, order_id DESC);
CREATE INDEX IF NOT EXISTS order_summaries_status ON order_summaries (status, created_at DESC, order_id DESC);

-- +goose Down
DROP TABLE order_summaries;
