// Package outbox is the transactional outbox: a service writes the events
// it emits into its own database in the same transaction as the change
// they describe, and a [Relay] publishes them to Kafka afterwards. Either
// both the change and its events happen or neither does, whatever crashes.
//
// A service writes through its relay ([Relay.Write]): once the transaction
// has committed, its rows are handed to the relay of the same process,
// which publishes them at once and as they are, without reading them back,
// so a hop costs a millisecond and no statement beyond the insert and a
// share of a delete. Every replica publishes its own rows this way; the
// table is read, by one relay at a time, only for rows no one handed
// over (a crash's, a replica's that stopped): on start and at a slow
// poll. Rows are published in commit order per key and deleted once
// Kafka acknowledged them. Delivery is at least once:
// a relay that dies between publishing and deleting publishes again, and
// consumers deduplicate on the event ID (package inbox).
//
// Each row keeps the W3C trace context of the transaction that wrote it, so
// the send span, and everything downstream, joins the trace of the request
// or message that caused the event.
//
// To drop it from a service, publish with kafka.Publisher after commit and
// accept that a crash in between loses events.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/propagation"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the outbox table's schema, for postgres.Migrate.
func Migrations() fs.FS { return postgres.Dir(migrations, "migrations") }

// Message is one event bound for a topic.
type Message struct {
	Topic string
	Event kafka.Event
}

// Producer is a service's side of its event contract: the topic it
// writes and the CloudEvents source it writes as. It builds the envelope
// and the outbox row in one call, so a service declares it once:
//
//	var events = outbox.Producer{Topic: inventoryevents.Topic, Source: inventoryevents.Source}
//	err := events.Emit(ctx, tx, inventoryevents.Reserved, orderID, data)
type Producer struct {
	Topic  string
	Source string
}

// Message is the outbox message of one event keyed by key (the order id),
// for a write that carries several.
func (p Producer) Message(typ, key string, data any) (Message, error) {
	ev, err := kafka.NewEvent(typ, p.Source, key, data)
	return Message{Topic: p.Topic, Event: ev}, err
}

// Emit writes one event in tx (Write).
func (p Producer) Emit(ctx context.Context, tx Execer, typ, key string, data any) error {
	return p.EmitWith(ctx, Write, tx, typ, key, data)
}

// EmitWith writes one event in tx with write: a relay's Write in a
// service, which hands the row to its relay once tx has committed.
func (p Producer) EmitWith(ctx context.Context, write WriteFunc, tx Execer, typ, key string, data any) error {
	m, err := p.Message(typ, key, data)
	if err != nil {
		return err
	}
	return write(ctx, tx, m)
}

// WriteFunc writes messages in a transaction: the package's [Write], or
// a relay's ([Relay.Write]), which also hands them to the relay at commit.
type WriteFunc func(ctx context.Context, tx Execer, msgs ...Message) error

// Execer is satisfied by pgx.Tx: Write must run inside the caller's
// transaction to be atomic with the change.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Write stores msgs in tx, with the trace context of ctx, for the relay
// to find: whoever commits tx then calls the relay's Wake (a relay's own
// Write needs none). In a transaction of postgres.InTx the
// rows travel with COMMIT (postgres.LaterRows): the rows of every message
// written in the transaction, a consumer batch's included, are one
// multi-row INSERT, in the order they were written; an error writing them
// is the commit's.
func Write(ctx context.Context, tx Execer, msgs ...Message) error {
	_, traceJSON, err := traceOf(ctx)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		e := m.Event
		if err := postgres.LaterRows(ctx, tx, writeSQL,
			m.Topic, e.Key, e.ID, e.Type, e.Source, e.Time, string(e.Data), traceJSON); err != nil {
			return fmt.Errorf("outbox: write %s event: %w", e.Type, err)
		}
	}
	return nil
}

// traceOf is ctx's W3C trace context, as a map and as the JSON the
// outbox row keeps.
func traceOf(ctx context.Context) (map[string]string, string, error) {
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	traceJSON, err := json.Marshal(carrier)
	if err != nil {
		return nil, "", fmt.Errorf("outbox: encode trace context: %w", err)
	}
	return carrier, string(traceJSON), nil
}

// writeSQL writes outbox rows from one array per column, in the arrays'
// order (the relay publishes in id order).
const writeSQL = `INSERT INTO outbox (topic, event_key, event_id, event_type, event_source, event_time, data, trace_context)
	SELECT topic, event_key, event_id, event_type, event_source, event_time, data::json, trace_context::jsonb
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[])
		WITH ORDINALITY AS x(topic, event_key, event_id, event_type, event_source, event_time, data, trace_context, n)
	ORDER BY n`

// handSQL is writeSQL returning each row's id, in the arrays' order.
const handSQL = writeSQL + ` RETURNING id`
