-- +goose Up
-- The id of the transaction that appended each event. Positions come from a
-- sequence and are taken before commit, so a reader that follows positions
-- alone can pass an event whose transaction commits late and never see it.
-- Readers follow (transaction_id, position) instead and stop short of any
-- transaction still in flight (see ReadAll).
ALTER TABLE events ADD COLUMN transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id();
-- Shape version of the data, for upcasting old events on read.
ALTER TABLE events ADD COLUMN schema_version int NOT NULL DEFAULT 1;
CREATE INDEX events_tx_position ON events (transaction_id, position);

-- The latest snapshot of each stream: its state as of a version.
CREATE TABLE snapshots (
    stream_id      text PRIMARY KEY,
    version        bigint      NOT NULL,
    schema_version int         NOT NULL,
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE snapshots;
DROP INDEX events_tx_position;
ALTER TABLE events DROP COLUMN schema_version;
ALTER TABLE events DROP COLUMN transaction_id;
