-- +goose Up
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text        NOT NULL,
    event_key     text        NOT NULL,
    event_id      text        NOT NULL,
    event_type    text        NOT NULL,
    event_source  text        NOT NULL,
    event_time    timestamptz NOT NULL,
    data          jsonb       NOT NULL,
    trace_context jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE outbox;
