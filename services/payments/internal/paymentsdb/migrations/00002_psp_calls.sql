-- +goose Up
-- A provider call payments has decided to make (a charge or a refund),
-- recorded in the transaction that decided it and deleted in the one that
-- records its outcome. The call itself runs between the two, outside any
-- transaction. A row whose due_at has passed was left by a crash or a
-- failed attempt: the recovery loop claims it (moving due_at on by a
-- lease) and makes the call again, with the same idempotency key.
CREATE TABLE psp_calls (
    order_id   text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('charge', 'refund')),
    due_at     timestamptz NOT NULL,
    attempts   int         NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, kind)
);
CREATE INDEX psp_calls_due ON psp_calls (due_at);

-- +goose Down
DROP TABLE psp_calls;
