-- +goose Up
-- The highest fencing token each singleton job has written with. A leader
-- whose token is lower was deposed: its writes are refused.
CREATE TABLE fencing_tokens (
    job        text PRIMARY KEY,
    token      bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE fencing_tokens;
