-- +goose Up
-- The read model (order_summaries) replaced orders_view, which the command
-- side used to update in its own transaction. Its schema lives with its
-- projection and queries now: internal/readmodel/migrations.
DROP TABLE IF EXISTS orders_view;

-- +goose Down
SELECT 1;
