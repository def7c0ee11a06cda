-- +goose Up
CREATE INDEX inbox_processed_at ON inbox (processed_at);

-- +goose Down
DROP INDEX inbox_processed_at;
