-- +goose Up
-- The W3C traceparent of the saga step that reserved, so that a later
-- compensation (the expiry job releasing it) joins the order's trace.
ALTER TABLE reservations ADD COLUMN traceparent text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE reservations DROP COLUMN traceparent;
