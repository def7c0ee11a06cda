// Package eventstore stores aggregates as their events in PostgreSQL: one
// stream per aggregate, versions 1, 2, 3… within it, and a global position
// across all streams for projections.
//
// [Append] takes the version the caller last saw; if another writer got
// there first it fails with [ErrVersionConflict] and appends nothing, so
// concurrent commands can never silently lose an event. The caller reloads
// and decides again, or reports the conflict.
//
// To drop event sourcing from a service, store the aggregate's current
// state in a table instead and delete this package's migration.
package eventstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/example/sagasuite/platform/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the events table's schema, for postgres.Migrate.
func Migrations() fs.FS { return postgres.Dir(migrations, "migrations") }

// ErrVersionConflict means the stream moved on since the caller read it.
var ErrVersionConflict = errors.New("eventstore: version conflict")

// Querier is satisfied by pgx.Tx, *pgx.Conn and *pgxpool.Pool.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// NewEvent is an event to append.
type NewEvent struct {
	Type       string
	Data       json.RawMessage
	Metadata   map[string]string // e.g. trace_id, causation_id
	OccurredAt time.Time
}

// Event is a stored event.
type Event struct {
	Position   int64 // global, increasing in insertion order
	StreamID   string
	Version    int64 // 1 for a stream's first event
	Type       string
	Data       json.RawMessage
	Metadata   map[string]string
	OccurredAt time.Time
}

// Append adds events to stream if its current version is expected (0 for a
// new stream) and returns the new version. Run it in the transaction that
// makes the rest of the change (read model, outbox), so all or none happen.
func Append(ctx context.Context, tx Querier, stream string, expected int64, events ...NewEvent) (int64, error) {
	var current int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = $1`, stream).Scan(&current); err != nil {
		return 0, fmt.Errorf("read version of %s: %w", stream, err)
	}
	if current != expected {
		return 0, fmt.Errorf("append to %s at version %d, stream is at %d: %w", stream, expected, current, ErrVersionConflict)
	}
	v := expected
	for _, e := range events {
		v++
		meta, err := json.Marshal(e.Metadata)
		if err != nil {
			return 0, fmt.Errorf("encode metadata: %w", err)
		}
		if e.Metadata == nil {
			meta = []byte("{}")
		}
		_, err = tx.Exec(ctx, `INSERT INTO events (stream_id, version, type, data, metadata, occurred_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			stream, v, e.Type, []byte(e.Data), meta, e.OccurredAt)
		if postgres.IsUniqueViolation(err, "events_stream_version") {
			// A concurrent writer committed this version after our read.
			return 0, fmt.Errorf("append to %s at version %d: %w", stream, expected, ErrVersionConflict)
		}
		if err != nil {
			return 0, fmt.Errorf("append %s to %s: %w", e.Type, stream, err)
		}
	}
	return v, nil
}

// Load returns stream's events in version order; none for an unknown stream.
func Load(ctx context.Context, q Querier, stream string) ([]Event, error) {
	return query(ctx, q, `SELECT position, stream_id, version, type, data, metadata, occurred_at
		FROM events WHERE stream_id = $1 ORDER BY version`, stream)
}

// ReadAll returns up to limit events after position, in position order.
func ReadAll(ctx context.Context, q Querier, after int64, limit int) ([]Event, error) {
	return query(ctx, q, `SELECT position, stream_id, version, type, data, metadata, occurred_at
		FROM events WHERE position > $1 ORDER BY position LIMIT $2`, after, limit)
}

func query(ctx context.Context, q Querier, sql string, args ...any) ([]Event, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var data, meta []byte
		if err := rows.Scan(&e.Position, &e.StreamID, &e.Version, &e.Type, &data, &meta, &e.OccurredAt); err != nil {
			return nil, fmt.Errorf("read event: %w", err)
		}
		e.Data = data
		if err := json.Unmarshal(meta, &e.Metadata); err != nil {
			return nil, fmt.Errorf("event %s/%d metadata: %w", e.StreamID, e.Version, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}
