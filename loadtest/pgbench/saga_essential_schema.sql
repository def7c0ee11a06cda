-- The tables saga_essential.sql writes: the suite's inbox, outbox, event
-- store, projection and business tables, reduced to the columns and
-- indexes a saga's statements use. One database stands for the three
-- services' (the ceiling is PostgreSQL's work, wherever it runs).
-- loadtest/bench.sh creates it on a scratch database.
CREATE TABLE inbox (consumer text NOT NULL, event_id text NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer, event_id));
CREATE INDEX inbox_processed_at ON inbox (processed_at);
CREATE TABLE outbox (id bigserial PRIMARY KEY, topic text NOT NULL, event_key text NOT NULL, event_id text NOT NULL,
    event_type text NOT NULL, event_source text NOT NULL, event_time timestamptz NOT NULL, data jsonb NOT NULL,
    trace_context jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now());
-- The relay reads and deletes its batch by id; here by key, which stands
-- for that index range (pgbench cannot carry the ids from one statement to
-- the next).
CREATE INDEX outbox_event_key ON outbox (event_key);
CREATE TABLE events (position bigserial PRIMARY KEY, stream_id text NOT NULL, version bigint NOT NULL, type text NOT NULL,
    data jsonb NOT NULL, metadata jsonb NOT NULL DEFAULT '{}', occurred_at timestamptz NOT NULL,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(), CONSTRAINT events_stream_version UNIQUE (stream_id, version));
CREATE INDEX events_tx_position ON events (transaction_id, position);
CREATE TABLE projection_checkpoints (name text PRIMARY KEY, transaction_id bigint NOT NULL, position bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO projection_checkpoints VALUES ('orders', 0, 0);
CREATE TABLE order_view (order_id text PRIMARY KEY, status text NOT NULL, total_cents bigint NOT NULL, version bigint NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE products (sku text PRIMARY KEY, available bigint NOT NULL, reserved bigint NOT NULL DEFAULT 0, committed bigint NOT NULL DEFAULT 0);
INSERT INTO products (sku, available) SELECT 'SKU-' || i, 1000000000 FROM generate_series(1, 20) i;
CREATE TABLE reservations (order_id text NOT NULL, sku text NOT NULL REFERENCES products (sku), quantity bigint NOT NULL,
    status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (order_id, sku));
CREATE INDEX reservations_open ON reservations (status, created_at) WHERE status = 'RESERVED';
CREATE TABLE intents (order_id text PRIMARY KEY, placed bool NOT NULL DEFAULT false, reserved bool NOT NULL DEFAULT false,
    payment_token text, amount_cents bigint NOT NULL DEFAULT 0);
CREATE TABLE psp_calls (order_id text NOT NULL, kind text NOT NULL, attempts int NOT NULL DEFAULT 0, lease_until timestamptz NOT NULL, PRIMARY KEY (order_id, kind));
CREATE TABLE payments (payment_id text PRIMARY KEY, order_id text NOT NULL UNIQUE, status text NOT NULL, amount_cents bigint NOT NULL, charge_id text);
