-- +goose Up
CREATE TABLE products (
    sku         text PRIMARY KEY,
    name        text   NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    available   bigint NOT NULL CHECK (available >= 0),
    reserved    bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    committed   bigint NOT NULL DEFAULT 0 CHECK (committed >= 0)
);

CREATE TABLE reservations (
    order_id   text        NOT NULL,
    sku        text        NOT NULL REFERENCES products (sku),
    quantity   bigint      NOT NULL CHECK (quantity > 0),
    status     text        NOT NULL CHECK (status IN ('RESERVED', 'COMMITTED', 'RELEASED')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, sku)
);

CREATE INDEX reservations_open ON reservations (status, created_at) WHERE status = 'RESERVED';

-- +goose Down
DROP TABLE reservations;
DROP TABLE products;
