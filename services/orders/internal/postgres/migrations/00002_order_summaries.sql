-- +goose Up
-- The read model (CQRS query side), filled by the projector from the event
-- store (internal/readmodel). It replaces orders_view, which the command
-- side used to update in its own transaction; the projector backfills
-- this table from event zero on first start.
CREATE TABLE order_summaries (
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
CREATE INDEX order_summaries_recent ON order_summaries (created_at DESC, order_id DESC);
CREATE INDEX order_summaries_customer ON order_summaries (customer_id, created_at DESC, order_id DESC);
CREATE INDEX order_summaries_status ON order_summaries (status, created_at DESC, order_id DESC);

DROP TABLE orders_view;

-- +goose Down
DROP TABLE order_summaries;
