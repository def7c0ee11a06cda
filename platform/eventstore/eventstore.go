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
	Type string
	// Schema is the version of Data's shape; 0 means 1. Readers upcast
	// older shapes to the current one.
	Schema     int
	Data       json.RawMessage
	Metadata   map[string]string // e.g. trace_id, causation_id
	OccurredAt time.Time
}

// Event is a stored event.
type Event struct {
	Position   int64  // global, increasing in insertion order
	TxID       uint64 // the appending transaction (see ReadAll)
	StreamID   string
	Version    int64 // 1 for a stream's first event
	Type       string
	Schema     int
	Data       json.RawMessage
	Metadata   map[string]string
	OccurredAt time.Time
}

// Appended says where an append left the stream.
type Appended struct {
	Version  int64 // the stream's new version
	Position int64 // global position of the last event appended
}

// Append adds events to stream if its current version is expected (0 for a
// new stream). Run it in the transaction that makes the rest of the change
// (outbox, idempotency key), so all or none happen, and wake the
// projectors after the commit (projection.Projector.Wake).
//
// The first event's INSERT checks the stream's version itself, so an
// append costs one statement per event and no read.
func Append(ctx context.Context, tx Querier, stream string, expected int64, events ...NewEvent) (Appended, error) {
	out := Appended{Version: expected}
	for i, e := range events {
		out.Version++
		meta := []byte("{}")
		if e.Metadata != nil {
			var err error
			if meta, err = json.Marshal(e.Metadata); err != nil {
				return Appended{}, fmt.Errorf("encode metadata: %w", err)
			}
		}
		insert := appendNext
		if i == 0 {
			insert = appendFirst
		}
		err := tx.QueryRow(ctx, insert, stream, out.Version, e.Type, max(e.Schema, 1), []byte(e.Data), meta, e.OccurredAt).Scan(&out.Position)
		if i == 0 && errors.Is(err, pgx.ErrNoRows) {
			return Appended{}, fmt.Errorf("append to %s at version %d: the stream is at another version, or its last writer is a newer transaction: %w", stream, expected, ErrVersionConflict)
		}
		if postgres.IsUniqueViolation(err, "events_stream_version") {
			// A concurrent writer committed this version after our read.
			return Appended{}, fmt.Errorf("append to %s at version %d: %w", stream, expected, ErrVersionConflict)
		}
		if err != nil {
			return Appended{}, fmt.Errorf("append %s to %s: %w", e.Type, stream, err)
		}
	}
	return out, nil
}

// appendFirst inserts a stream's next event only if the stream is at the
// version before it ($2 - 1). The second condition guards the reading
// order (see ReadAll): a transaction whose id is older than the stream's
// last writer's would be read before that writer's events although it
// comes after them. It must retry with a new transaction; then, within a
// stream, reading order is version order. No row returned means either.
const appendFirst = `INSERT INTO events (stream_id, version, type, schema_version, data, metadata, occurred_at)
	SELECT $1::text, $2::bigint, $3::text, $4::int, $5::jsonb, $6::jsonb, $7::timestamptz
	WHERE (SELECT COALESCE(MAX(version), 0) = $2 - 1 AND COALESCE(bool_and(transaction_id <= pg_current_xact_id()), true)
		FROM events WHERE stream_id = $1)
	RETURNING position`

// appendNext inserts the events after the first of an append.
const appendNext = `INSERT INTO events (stream_id, version, type, schema_version, data, metadata, occurred_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING position`

const columns = `position, transaction_id::text::bigint, stream_id, version, type, schema_version, data, metadata, occurred_at`

// Load returns stream's events after version after (0 for all), in version
// order; none for an unknown stream.
func Load(ctx context.Context, q Querier, stream string, after int64) ([]Event, error) {
	return query(ctx, q, `SELECT `+columns+` FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version`, stream, after)
}

// LoadUntil returns stream's events that occurred at or before t, in
// version order: the stream as it stood at t.
func LoadUntil(ctx context.Context, q Querier, stream string, t time.Time) ([]Event, error) {
	return query(ctx, q, `SELECT `+columns+` FROM events WHERE stream_id = $1 AND occurred_at <= $2 ORDER BY version`, stream, t)
}

// Checkpoint is how far a reader of the whole store has got. The zero
// value is the beginning.
type Checkpoint struct {
	TxID     uint64 `json:"transaction_id"`
	Position int64  `json:"position"`
}

// Passed reports whether e is at or before c in the reading order.
func (c Checkpoint) Passed(e Event) bool {
	return e.TxID < c.TxID || (e.TxID == c.TxID && e.Position <= c.Position)
}

// ReadAll returns up to limit events after c in (transaction, position)
// order, leaving out every transaction that may still commit: only events
// of transactions older than the oldest one in flight are returned. So a
// reader that stores the last event's checkpoint never skips an event, even
// one whose transaction took a lower position and committed later. Within
// one stream the order is version order (Append sees to it).
//
// The ORDER BY names the table's columns: a bare transaction_id would be
// the bigint of the select list, which no index orders, and PostgreSQL
// would sort every event past the checkpoint (in parallel workers, 13 ms a
// call at a million events) instead of reading the first few off the index.
func ReadAll(ctx context.Context, q Querier, after Checkpoint, limit int) ([]Event, error) {
	return query(ctx, q, readAllSQL, fmt.Sprint(after.TxID), after.Position, limit)
}

const readAllSQL = `SELECT ` + columns + ` FROM events
		WHERE (transaction_id, position) > ($1::text::xid8, $2)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY events.transaction_id, events.position LIMIT $3`

// After reads the event store after a checkpoint that is stored in the
// database, read in the same statement: a projector reads its checkpoint
// and the events after it in one statement instead of two.
type After struct{ readSQL string }

// AfterStored returns the reads after the checkpoint that stored selects:
// a query of one row (transaction_id and position, as bigints), or of none
// for the beginning, whose one parameter is $1. The statement reads it in
// its own snapshot, so a reader that locked out other writers of the
// checkpoint in an earlier statement sees the latest.
//
// Unlike ReadAll's, the statement does not leave out the events held back:
// it marks them, and the reader stops at the first, so that one statement
// also says whether events are held back, which an idle projector asked
// in a statement of its own after every read that returned nothing. In
// the reading order every held-back event comes after every other, so
// what is read before the first is what ReadAll would return.
//
// And it holds back less: only the events after the oldest transaction in
// flight that may be this database's. Transaction ids are cluster-wide,
// and ReadAll waits for every transaction on the server, so one database's
// writers (or a long transaction anywhere) held back every other
// database's projectors, which looked again and again. A transaction in
// flight in the statement's snapshot is known to be another database's
// when pg_stat_get_activity shows it on a backend of that database (ids
// are unique, and a backend stays in one database); one it cannot place
// (it ended since, or the role may not see other roles' sessions) still
// holds the events back. That look at the sessions costs about 60 µs, so
// it is taken only when the read would otherwise return nothing: when the
// first event after the checkpoint is past the oldest transaction in
// flight. A read that has events to return holds back the rest as ReadAll.
func AfterStored(stored string) After {
	after := `(transaction_id, position) > ((SELECT coalesce(max(c.transaction_id), 0) FROM (` + stored + `) c)::text::xid8,
		(SELECT coalesce(max(c.position), 0) FROM (` + stored + `) c))`
	xmin := `pg_snapshot_xmin(pg_current_snapshot())`
	first := `(SELECT e.transaction_id FROM events e WHERE ` + after + ` ORDER BY e.transaction_id, e.position LIMIT 1)`
	return After{
		readSQL: `SELECT transaction_id >= ` + xmin + ` AND (` + first + ` < ` + xmin + ` OR transaction_id >= ` + ownHorizon + `),
			` + columns + ` FROM events WHERE ` + after + `
		ORDER BY events.transaction_id, events.position LIMIT $2`,
	}
}

// ownHorizon is the oldest transaction in flight in the statement's
// snapshot that is not known to be another database's (the snapshot's
// xmax when there is none): every event of an older transaction is
// committed or never will be.
const ownHorizon = `(SELECT coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot()))
		FROM pg_snapshot_xip(pg_current_snapshot()) x
		WHERE NOT EXISTS (SELECT 1 FROM pg_stat_get_activity(NULL) a WHERE a.backend_xid = x::xid
			AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())))`

// Read is ReadAll after the stored checkpoint (stored's $1 = arg), and
// whether events after those are held back.
func (a After) Read(ctx context.Context, q Querier, arg any, limit int) (events []Event, heldBack bool, err error) {
	rows, err := q.Query(ctx, a.readSQL, arg, limit)
	return ReadHeld(rows, err)
}

// QueueRead queues Read's query on b; read its result with
// ReadHeld(results.Query()).
func (a After) QueueRead(b *pgx.Batch, arg any, limit int) { b.Queue(a.readSQL, arg, limit) }

// ReadHeld reads the events of a query After.QueueRead queued, from its
// batch result (rows and err as pgx.BatchResults.Query returns them): the
// events up to the first held back, and whether there was one.
func ReadHeld(rows pgx.Rows, err error) (events []Event, heldBack bool, _ error) {
	if err != nil {
		return nil, false, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var held bool
		e, err := scanEvent(rows, &held)
		if err != nil {
			return nil, false, err
		}
		if held {
			heldBack = true
			break
		}
		events = append(events, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read events: %w", err)
	}
	return events, heldBack, nil
}

// At returns the checkpoint of the event at position; found is false when
// there is none (yet).
func At(ctx context.Context, q Querier, position int64) (c Checkpoint, found bool, err error) {
	err = q.QueryRow(ctx, `SELECT transaction_id::text::bigint, position FROM events WHERE position = $1`, position).Scan(&c.TxID, &c.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("look up position %d: %w", position, err)
	}
	return c, true, nil
}

// Pending counts the committed events after c in the reading order, held
// back or not, up to limit (counting further would cost more than it says).
// The ORDER BY keeps the planner on the index: without it, PostgreSQL
// may expect most rows to match and scan the table for the first one,
// which cost an idle projector 5 ms per look at 18,000 events (and grows
// with history).
func Pending(ctx context.Context, q Querier, after Checkpoint, limit int) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM events
		WHERE (transaction_id, position) > ($1::text::xid8, $2) ORDER BY transaction_id, position LIMIT $3) pending`, fmt.Sprint(after.TxID), after.Position, limit).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count pending events: %w", err)
	}
	return n, nil
}

// Head returns the highest position in the store (0 when empty).
func Head(ctx context.Context, q Querier) (int64, error) {
	var p int64
	if err := q.QueryRow(ctx, `SELECT COALESCE(MAX(position), 0) FROM events`).Scan(&p); err != nil {
		return 0, fmt.Errorf("read head position: %w", err)
	}
	return p, nil
}

// scanEvent reads a row of first's columns, then of columns.
func scanEvent(rows pgx.Rows, first ...any) (Event, error) {
	var e Event
	var data, meta []byte
	var tx int64
	if err := rows.Scan(append(first, &e.Position, &tx, &e.StreamID, &e.Version, &e.Type, &e.Schema, &data, &meta, &e.OccurredAt)...); err != nil {
		return e, fmt.Errorf("read event: %w", err)
	}
	e.TxID, e.Data = uint64(tx), data // #nosec G115 -- read from an xid8 column: never negative
	if err := json.Unmarshal(meta, &e.Metadata); err != nil {
		return e, fmt.Errorf("event %s/%d metadata: %w", e.StreamID, e.Version, err)
	}
	return e, nil
}

func query(ctx context.Context, q Querier, sql string, args ...any) ([]Event, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return collect(rows)
}

// collect reads events off rows of columns, and closes them.
func collect(rows pgx.Rows) ([]Event, error) {
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// Snapshot is a stream's state as of Version, in the shape Schema.
type Snapshot struct {
	Version int64
	Schema  int
	State   json.RawMessage
}

// SaveSnapshot stores state as stream's snapshot, replacing an older one.
// Save it in the transaction that appended up to version.
func SaveSnapshot(ctx context.Context, q Querier, stream string, s Snapshot) error {
	_, err := q.Exec(ctx, `INSERT INTO snapshots (stream_id, version, schema_version, state) VALUES ($1, $2, $3, $4)
		ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version,
			state = EXCLUDED.state, taken_at = now()
		WHERE snapshots.version < EXCLUDED.version`, stream, s.Version, s.Schema, []byte(s.State))
	if err != nil {
		return fmt.Errorf("save snapshot of %s: %w", stream, err)
	}
	return nil
}

// LoadSnapshot returns stream's latest snapshot; found is false without one.
func LoadSnapshot(ctx context.Context, q Querier, stream string) (s Snapshot, found bool, err error) {
	var state []byte
	err = q.QueryRow(ctx, `SELECT version, schema_version, state FROM snapshots WHERE stream_id = $1`, stream).Scan(&s.Version, &s.Schema, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("load snapshot of %s: %w", stream, err)
	}
	s.State = state
	return s, true, nil
}

// LoadLatest returns stream's snapshot in shape schema, if it has one,
// and the events after it (all of them without one), in version order:
// what rebuilding the stream's state needs, read in one statement, so
// one round trip, and no snapshot saved between two reads can leave a
// gap. A snapshot in another shape is ignored (found is false).
func LoadLatest(ctx context.Context, q Querier, stream string, schema int) (snap Snapshot, found bool, events []Event, err error) {
	// The snapshot comes first, as a row of the events' columns.
	rows, err := q.Query(ctx, `SELECT true, 0::bigint, 0::bigint, stream_id, version, '', schema_version, state, '{}'::jsonb, taken_at
			FROM snapshots WHERE stream_id = $1 AND schema_version = $2
		UNION ALL
		SELECT false, `+columns+` FROM events WHERE stream_id = $1
			AND version > COALESCE((SELECT version FROM snapshots WHERE stream_id = $1 AND schema_version = $2), 0)
		ORDER BY 1 DESC, 5`, stream, schema)
	if err != nil {
		return snap, false, nil, fmt.Errorf("load %s: %w", stream, err)
	}
	defer rows.Close()
	for rows.Next() {
		var isSnap bool
		e, err := scanEvent(rows, &isSnap)
		if err != nil {
			return snap, false, nil, err
		}
		if isSnap {
			snap, found = Snapshot{Version: e.Version, Schema: e.Schema, State: e.Data}, true
		} else {
			events = append(events, e)
		}
	}
	if err := rows.Err(); err != nil {
		return snap, false, nil, fmt.Errorf("load %s: %w", stream, err)
	}
	return snap, found, events, nil
}
