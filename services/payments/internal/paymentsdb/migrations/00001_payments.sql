-- +goose Up
CREATE TABLE payment_intents (
    order_id      text PRIMARY KEY,
    payment_token text        NOT NULL DEFAULT '', -- cleared once the charge is decided
    card_last4    text        NOT NULL DEFAULT '',
    amount_cents  bigint      NOT NULL DEFAULT 0,
    placed        boolean     NOT NULL DEFAULT false,
    reserved      boolean     NOT NULL DEFAULT false,
    cancelled     boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payments (
    payment_id   text PRIMARY KEY,
    order_id     text        NOT NULL UNIQUE,
    amount_cents bigint      NOT NULL,
    status       text        NOT NULL CHECK (status IN ('AUTHORIZED', 'DECLINED', 'REFUNDED', 'FAILED')),
    card_last4   text        NOT NULL,
    reason       text        NOT NULL DEFAULT '',
    charge_id    text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE payments;
DROP TABLE payment_intents;
