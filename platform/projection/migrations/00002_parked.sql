-- +goose Up
-- Events a projection could not apply (they do not decode, no code knows
-- their type, or the read model refuses their data), recorded with why
-- and skipped, so one bad event does not freeze the read model and what
-- reads it. projection_events_parked_total counts them; an alert fires.
CREATE TABLE projection_parked (
    name      text        NOT NULL,
    position  bigint      NOT NULL,
    stream_id text        NOT NULL,
    version   bigint      NOT NULL,
    type      text        NOT NULL,
    error     text        NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, position)
);

-- +goose Down
DROP TABLE projection_parked;
