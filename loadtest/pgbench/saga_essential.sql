-- The pattern-faithful ceiling (make bench): the SQL four sagas must run
-- to keep every pattern of the suite, and nothing else, written the way
-- the suite could best write it. pgbench's tps × 4 is the most sagas a
-- second PostgreSQL can carry on this machine with every pattern kept.
--
-- Four, because the consumers and relays batch: at a saturating rate each
-- consumer and relay step handles several sagas at once, in one
-- transaction of multi-row statements (INSERT … SELECT FROM unnest(…)),
-- while POST /orders and the client's read are one order each. Per saga
-- that is about 12 statements and 6 transactions (BEGIN/COMMIT aside).
--
-- Which statement keeps which pattern:
--   inbox        one INSERT … ON CONFLICT DO NOTHING per consumer batch:
--                each message's effect applies once (idempotent consumer)
--   outbox       one INSERT per batch beside the business change (the
--                message commits with it); the relay's SELECT, then its
--                DELETE once the broker has the messages
--   event store  orders' INSERT INTO events (the order's history is the
--                truth), the read of the streams a step decides on
--   CQRS         the projector's read of new events, its multi-row upsert
--                of order_view and its checkpoint; the client's read of
--                order_view (GET /orders/{id})
--   saga         each service's business change: inventory reserves and
--                commits stock (products, reservations), payments records
--                the two facts the charge waits for, plans the provider call
--                (psp_calls) and records the payment
-- Not here, because no pattern needs them: reads taken before writes,
-- locks taken twice, a projector's lock and checkpoint read per step.
--
-- Tables: saga_essential_schema.sql.
\set a random(1, 1000000000000)
\set b random(1, 1000000000000)
\set c random(1, 1000000000000)
\set d random(1, 1000000000000)
\set s1 random(1, 20)
\set s2 random(1, 20)

-- orders, POST /orders (one order per transaction): event store + outbox;
-- written out four times, once per saga: pgbench scripts have no loops
BEGIN;
INSERT INTO events (stream_id, version, type, data, occurred_at) VALUES ('o' || :a, 1, 'OrderPlaced', '{"order_id":"o","customer_id":"c-1","total_cents":2500,"items":[{"sku":"SKU-1","quantity":1,"price_cents":2500}],"payment":{"token":"enc_v3.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","card_last4":"4242"}}', now());
INSERT INTO outbox (topic, event_key, event_id, event_type, event_source, event_time, data) VALUES ('orders.events', 'o' || :a, 'e-p' || :a, 'orders.placed', 'orders', now(), '{"order_id":"o","customer_id":"c-1","total_cents":2500,"items":[{"sku":"SKU-1","quantity":1,"price_cents":2500}],"payment":{"token":"enc_v3.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","card_last4":"4242"}}');
COMMIT;
BEGIN;
INSERT INTO events (stream_id, version, type, data, occurred_at) VALUES ('o' || :b, 1, 'OrderPlaced', '{"order_id":"o","customer_id":"c-1","total_cents":2500,"items":[{"sku":"SKU-1","quantity":1,"price_cents":2500}],"payment":{"token":"enc_v3.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","card_last4":"4242"}}', now());
INSERT INTO outbox (topic, event_key, event_id, event_type, event_source, event_time, data) VALUES ('orders.events', 'o' || :b, 'e-p' || :b, 'orders.placed', 'orders', now(), '{"order_id":"o","customer_id":"c-1","total_cents":2500,"items":[{"sku":"SKU-1","quantity":1,"price_cents":2500}],"payment":{"token":"enc_v3.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","card_last4":"4242"}}');
COMMIT;
BEGIN;
INSERT INTO events (stream_id, version, type, data, occurred_at) VALUES ('o' || :c, 1, 'OrderPlaced', '{"order_id":"o","customer_id":"c-1","total_cents":2500,"items":[{"sku":"SKU-1","quantity":1,"price_cents":2500}],"payment":{"token":"enc_v3.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","card_last4":"4242"}}', now());
INSERT INTO outbox (topic, event_key, event_id, event_type, event_source, event_time, data) VALUES ('orders.events', 'o' || :c, 'e-p' || :c, 'orders.placed', 'orders', now(), '{"order_id":"o","customer_id":"c-1","total_cents":2500,"items":[{"sku":"SKU-1","quantity":1,"price_cents":2500}],"payment":{"token":"enc_v3.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","card_last4":"4242"}}');
COMMIT;
BEGIN;
INSERT INTO events (stream_id, version, type, data, occurred_at) VALUES ('o' || :d, 1, 'OrderPlaced', '{"order_id":"o","customer_id":"c-1","total_cents":2500,"items":[{"sku":"SKU-1","quantity":1,"price_cents":2500}],"payment":{"token":"enc_v3.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","card_last4":"4242"}}', now());
INSERT INTO outbox (topic, event_key, event_id, event_type, event_source, event_time, data) VALUES ('orders.events', 'o' || :d, 'e-p' || :d, 'orders.placed', 'orders', now(), '{"order_id":"o","customer_id":"c-1","total_cents":2500,"items":[{"sku":"SKU-1","quantity":1,"price_cents":2500}],"payment":{"token":"enc_v3.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","card_last4":"4242"}}');
COMMIT;

-- orders' relay: read the batch, publish it (the broker's work), delete it
SELECT id, topic, event_key, event_id, event_type, event_source, event_time, data, trace_context FROM outbox WHERE event_key IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) ORDER BY id LIMIT 256;
DELETE FROM outbox WHERE event_key IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d);

-- orders' projector (CQRS): the new events, the read model, the checkpoint
BEGIN;
SELECT position, stream_id, version, type, data FROM events WHERE stream_id IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) ORDER BY transaction_id, position;
INSERT INTO order_view (order_id, status, total_cents, version, updated_at) SELECT id, 'PENDING', 2500, 1, now() FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, version = excluded.version, updated_at = excluded.updated_at;
UPDATE projection_checkpoints SET transaction_id = 1, position = 1, updated_at = now() WHERE name = 'orders';
COMMIT;

-- inventory reserves (a batch of orders.placed): inbox, stock summed per
-- SKU and locked in SKU order, reservations, outbox
BEGIN;
INSERT INTO inbox (consumer, event_id) SELECT 'inventory', id FROM unnest(ARRAY['e-p' || :a, 'e-p' || :b, 'e-p' || :c, 'e-p' || :d]) id ON CONFLICT DO NOTHING RETURNING event_id;
UPDATE products p SET available = available - q, reserved = reserved + q FROM (VALUES ('SKU-' || :s1, 2), ('SKU-' || :s2, 2)) AS c(sku, q) WHERE p.sku = c.sku AND p.available >= q RETURNING p.sku;
INSERT INTO reservations (order_id, sku, quantity, status) SELECT id, 'SKU-' || :s1, 1, 'RESERVED' FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id;
INSERT INTO outbox (topic, event_key, event_id, event_type, event_source, event_time, data) SELECT 'inventory.events', id, 'e-r' || id, 'inventory.reserved', 'inventory', now(), jsonb_build_object('order_id', id) FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id;
COMMIT;

-- payments records the order (a batch of orders.placed): inbox, intents
BEGIN;
INSERT INTO inbox (consumer, event_id) SELECT 'payments', id FROM unnest(ARRAY['e-p' || :a, 'e-p' || :b, 'e-p' || :c, 'e-p' || :d]) id ON CONFLICT DO NOTHING RETURNING event_id;
INSERT INTO intents (order_id, placed, payment_token, amount_cents) SELECT id, true, 'enc_v3.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 2500 FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id ON CONFLICT (order_id) DO UPDATE SET placed = true RETURNING order_id, reserved;
COMMIT;

-- inventory's relay
SELECT id, topic, event_key, event_id, event_type, event_source, event_time, data, trace_context FROM outbox WHERE event_key IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) ORDER BY id LIMIT 256;
DELETE FROM outbox WHERE event_key IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d);

-- payments hears of the reservation (a batch of inventory.reserved):
-- inbox, the second fact, the planned provider call
BEGIN;
INSERT INTO inbox (consumer, event_id) SELECT 'payments', 'e-r' || id FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id ON CONFLICT DO NOTHING RETURNING event_id;
UPDATE intents SET reserved = true WHERE order_id IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) RETURNING order_id, placed, payment_token, amount_cents;
INSERT INTO psp_calls (order_id, kind, lease_until) SELECT id, 'charge', now() + interval '30 seconds' FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id ON CONFLICT DO NOTHING;
COMMIT;

-- payments settles the charges the provider answered (after the calls,
-- outside any transaction): the payment, the call done, the token
-- forgotten, the outcome in the outbox
BEGIN;
INSERT INTO payments (payment_id, order_id, status, amount_cents, charge_id) SELECT 'p' || id, id, 'AUTHORIZED', 2500, 'ch' || id FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id;
DELETE FROM psp_calls WHERE order_id IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) AND kind = 'charge';
UPDATE intents SET payment_token = NULL WHERE order_id IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d);
INSERT INTO outbox (topic, event_key, event_id, event_type, event_source, event_time, data) SELECT 'payments.events', id, 'e-a' || id, 'payments.authorized', 'payments', now(), jsonb_build_object('order_id', id, 'amount_cents', 2500) FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id;
COMMIT;

-- payments' relay
SELECT id, topic, event_key, event_id, event_type, event_source, event_time, data, trace_context FROM outbox WHERE event_key IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) ORDER BY id LIMIT 256;
DELETE FROM outbox WHERE event_key IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d);

-- inventory commits the stock (a batch of payments.authorized)
BEGIN;
INSERT INTO inbox (consumer, event_id) SELECT 'inventory', 'e-a' || id FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id ON CONFLICT DO NOTHING RETURNING event_id;
UPDATE reservations SET status = 'COMMITTED', updated_at = now() WHERE order_id IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) AND status = 'RESERVED' RETURNING order_id, sku, quantity;
UPDATE products p SET reserved = reserved - q, committed = committed + q FROM (VALUES ('SKU-' || :s1, 4)) AS c(sku, q) WHERE p.sku = c.sku;
INSERT INTO outbox (topic, event_key, event_id, event_type, event_source, event_time, data) SELECT 'inventory.events', id, 'e-c' || id, 'inventory.committed', 'inventory', now(), jsonb_build_object('order_id', id) FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id;
COMMIT;

-- inventory's relay
SELECT id, topic, event_key, event_id, event_type, event_source, event_time, data, trace_context FROM outbox WHERE event_key IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) ORDER BY id LIMIT 256;
DELETE FROM outbox WHERE event_key IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d);

-- orders confirms (a batch of inventory.committed): inbox, the orders'
-- histories (event sourcing decides on them), the new events, the outbox
BEGIN;
INSERT INTO inbox (consumer, event_id) SELECT 'orders', 'e-c' || id FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id ON CONFLICT DO NOTHING RETURNING event_id;
SELECT stream_id, version, type, data FROM events WHERE stream_id IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) ORDER BY stream_id, version;
INSERT INTO events (stream_id, version, type, data, occurred_at) SELECT id, 2, 'OrderConfirmed', '{}', now() FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id;
INSERT INTO outbox (topic, event_key, event_id, event_type, event_source, event_time, data) SELECT 'orders.events', id, 'e-o' || id, 'orders.confirmed', 'orders', now(), jsonb_build_object('order_id', id, 'status', 'CONFIRMED') FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id;
COMMIT;

-- orders' relay
SELECT id, topic, event_key, event_id, event_type, event_source, event_time, data, trace_context FROM outbox WHERE event_key IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) ORDER BY id LIMIT 256;
DELETE FROM outbox WHERE event_key IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d);

-- orders' projector again: the confirmation in the read model
BEGIN;
SELECT position, stream_id, version, type, data FROM events WHERE stream_id IN ('o' || :a, 'o' || :b, 'o' || :c, 'o' || :d) AND version = 2 ORDER BY transaction_id, position;
INSERT INTO order_view (order_id, status, total_cents, version, updated_at) SELECT id, 'CONFIRMED', 2500, 2, now() FROM unnest(ARRAY['o' || :a, 'o' || :b, 'o' || :c, 'o' || :d]) id ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, version = excluded.version, updated_at = excluded.updated_at;
UPDATE projection_checkpoints SET transaction_id = 2, position = 2, updated_at = now() WHERE name = 'orders';
COMMIT;

-- the client reads each order (GET /orders/{id}, the query side)
SELECT order_id, status, total_cents, version FROM order_view WHERE order_id = 'o' || :a;
SELECT order_id, status, total_cents, version FROM order_view WHERE order_id = 'o' || :b;
SELECT order_id, status, total_cents, version FROM order_view WHERE order_id = 'o' || :c;
SELECT order_id, status, total_cents, version FROM order_view WHERE order_id = 'o' || :d;
