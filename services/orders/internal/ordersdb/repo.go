// Package ordersdb is orders' write side in PostgreSQL (the adapter of
// app.Store, app.Idempotency and app.History): each order is its events in
// the event store, with snapshots of long streams, beside the idempotency
// keys and the outbox messages announcing each change, all in one
// transaction per command. The read side is internal/readmodel.
package ordersdb

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/orderevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is orders' own schema (idempotency keys); the event store
// brings its own (eventstore.Migrations).
func Migrations() fs.FS { return postgres.Dir(migrations, "migrations") }

// Setup creates or updates the event store's and orders' tables in pool's
// database and returns the repository on it. The outbox table is
// outbox.Setup's.
func Setup(ctx context.Context, pool *pgxpool.Pool, tel observe.Bundle, cfg Config) (*Repo, error) {
	r, err := New(pool, tel, cfg)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, pool, "eventstore", eventstore.Migrations()); err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, pool, "orders", Migrations()); err != nil {
		return nil, err
	}
	return r, nil
}

// snapshotSchema is the shape of a stored order.Order; bump it when the
// struct changes, and older snapshots are ignored (replayed instead).
const snapshotSchema = 2

// Config tunes the repository. The zero value is valid.
type Config struct {
	// SnapshotEvery takes a snapshot each time a stream passes a multiple
	// of this many events; 0 means 100.
	SnapshotEvery int64
	// Committed runs after each transaction the repository owns (Create,
	// Update, InTx): the place to wake the projector of this process; nil:
	// nothing.
	Committed func()
	// Outbox is how messages reach the outbox: the relay's Write, which
	// hands them to the relay of this process once their transaction has
	// committed; nil means outbox.Write (the relay finds them).
	Outbox outbox.WriteFunc
}

// Repo is the orders repository. It owns its transactions, except in
// UpdateTx, which joins the caller's (the inbox's, the watchdog's).
type Repo struct {
	pool         *pgxpool.Pool
	cfg          Config
	appendTiming metric.Float64Histogram
}

// Waiting implements app.Outbox: orders whose orders.placed still waits
// in the outbox, and every row there.
func (r *Repo) Waiting(ctx context.Context) (placed, all int64, err error) {
	return outbox.Waiting(ctx, r.pool, orderevents.Placed)
}

// New returns a repository on pool, timing appends through tel.
func New(pool *pgxpool.Pool, tel observe.Bundle, cfg Config) (*Repo, error) {
	if err := tel.For("orders repository"); err != nil {
		return nil, err
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 100
	}
	if cfg.Outbox == nil {
		cfg.Outbox = outbox.Write
	}
	h, err := tel.Meter("github.com/example/sagasuite/services/orders/internal/postgres").Float64Histogram("eventstore.append.duration",
		metric.WithDescription("Time to append a command's events, inside its transaction."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25))
	if err != nil {
		return nil, err
	}
	return &Repo{pool: pool, cfg: cfg, appendTiming: h}, nil
}

// Create stores a new order: its first event with meta, the idempotency key
// if any, and msgs, in one transaction. It returns the order and the
// event's global position, or app.ErrKeyTaken when a concurrent request stored
// the same key first.
func (r *Repo) Create(ctx context.Context, placed order.Event, key *app.IdempotencyKey, meta map[string]string, msgs ...outbox.Message) (order.Order, int64, error) {
	var o order.Order
	var pos int64
	p, ok := placed.Data.(order.Placed)
	if !ok {
		return o, 0, fmt.Errorf("create order from %s: want %s", placed.Type, order.TypePlaced)
	}
	err := r.InTx(ctx, func(tx pgx.Tx) error {
		o = order.Order{}
		if key != nil {
			// Sent with the append: a key a concurrent request stored
			// first fails the append's statement (see below).
			if err := postgres.Later(ctx, tx, `INSERT INTO idempotency_keys (key, fingerprint, order_id) VALUES ($1, $2, $3)`,
				key.Key, key.Fingerprint, p.OrderID); err != nil {
				return fmt.Errorf("store idempotency key: %w", err)
			}
		}
		var err error
		if pos, err = r.append(ctx, tx, &o, []order.Event{placed}, meta); err != nil {
			return err
		}
		return r.cfg.Outbox(ctx, tx, msgs...)
	})
	if postgres.IsUniqueViolation(err, "idempotency_keys_pkey") {
		return o, 0, app.ErrKeyTaken
	}
	return o, pos, err
}

// Decision is what a command decided: events to append and messages to send.
type Decision struct {
	Events   []order.Event
	Messages []outbox.Message
	// Meta is stored with each event (causation_id, …); trace ids are added.
	Meta map[string]string
}

// Update is UpdateTx in a transaction of its own, for a command that
// only appends events (with meta): app.Store's Update.
func (r *Repo) Update(ctx context.Context, id string, meta map[string]string, decide func(o *order.Order) ([]order.Event, error)) (order.Order, int64, error) {
	var o order.Order
	var pos int64
	err := r.InTx(ctx, func(tx pgx.Tx) (err error) {
		o, pos, err = r.UpdateTx(ctx, tx, id, func(o *order.Order) (Decision, error) {
			events, err := decide(o)
			return Decision{Events: events, Meta: meta}, err
		})
		return err
	})
	return o, pos, err
}

// UpdateTx loads order id in tx, lets decide look at it, and appends what it
// decided at the version it saw. A concurrent command that appended first
// makes it fail with eventstore.ErrVersionConflict (optimistic
// concurrency: reload and decide again). It returns the order after the
// change, the position of its last event (0 when decide changed nothing),
// and order.ErrNotFound for an unknown id.
func (r *Repo) UpdateTx(ctx context.Context, tx pgx.Tx, id string, decide func(o *order.Order) (Decision, error)) (order.Order, int64, error) {
	o, err := r.Load(ctx, tx, id)
	if err != nil {
		return o, 0, err
	}
	d, err := decide(&o)
	if err != nil || len(d.Events) == 0 {
		return o, 0, err
	}
	pos, err := r.append(ctx, tx, &o, d.Events, d.Meta)
	if err != nil {
		return o, 0, err
	}
	return o, pos, r.cfg.Outbox(ctx, tx, d.Messages...)
}

// In is the repository inside tx, as the use cases see it (app.Tx).
func (r *Repo) In(tx pgx.Tx) app.Tx { return txRepo{r: r, tx: tx} }

type txRepo struct {
	r  *Repo
	tx pgx.Tx
}

func (t txRepo) Decide(ctx context.Context, id string, meta map[string]string,
	decide func(o *order.Order) ([]order.Event, []outbox.Message, error)) (order.Order, error) {
	o, _, err := t.r.UpdateTx(ctx, t.tx, id, func(o *order.Order) (Decision, error) {
		events, msgs, err := decide(o)
		return Decision{Events: events, Messages: msgs, Meta: meta}, err
	})
	return o, err
}

func (t txRepo) AfterCommit(ctx context.Context, f func(ctx context.Context) error) bool {
	return inbox.AfterCommit(ctx, f)
}

// append applies events to o, stores them at o's version before them with
// meta (plus the order id as correlation id and the current trace), takes
// a snapshot when the stream passes a multiple of SnapshotEvery, and
// returns the last event's position.
func (r *Repo) append(ctx context.Context, tx pgx.Tx, o *order.Order, events []order.Event, meta map[string]string) (int64, error) {
	expected := o.Version
	for _, e := range events {
		if err := o.Apply(e); err != nil {
			return 0, err
		}
	}
	m := map[string]string{"correlation_id": o.ID}
	for k, v := range meta {
		m[k] = v
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		m["trace_id"], m["span_id"] = sc.TraceID().String(), sc.SpanID().String()
		carrier := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, carrier)
		m["traceparent"] = carrier["traceparent"]
	}
	news := make([]eventstore.NewEvent, len(events))
	for i, e := range events {
		data, schema, err := order.Encode(e)
		if err != nil {
			return 0, err
		}
		news[i] = eventstore.NewEvent{Type: e.Type, Schema: schema, Data: data, Metadata: m, OccurredAt: e.At}
	}
	start := time.Now()
	a, err := eventstore.Append(ctx, tx, order.StreamID(o.ID), expected, news...)
	r.appendTiming.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.Bool("conflict", errors.Is(err, eventstore.ErrVersionConflict))))
	if err != nil {
		return 0, err
	}
	if o.Version/r.cfg.SnapshotEvery > expected/r.cfg.SnapshotEvery {
		state, err := json.Marshal(o)
		if err != nil {
			return 0, err
		}
		if err := eventstore.SaveSnapshot(ctx, tx, order.StreamID(o.ID), eventstore.Snapshot{Version: o.Version, Schema: snapshotSchema, State: state}); err != nil {
			return 0, err
		}
	}
	return a.Position, nil
}

// Load rebuilds an order from its latest snapshot and the events after it.
func (r *Repo) Load(ctx context.Context, q eventstore.Querier, id string) (order.Order, error) {
	var o order.Order
	snap, found, events, err := eventstore.LoadLatest(ctx, q, order.StreamID(id), snapshotSchema)
	if err != nil {
		return o, err
	}
	if found {
		if err := json.Unmarshal(snap.State, &o); err != nil {
			return o, fmt.Errorf("snapshot of %s: %w", id, err)
		}
	}
	if err := fold(&o, events); err != nil {
		return o, err
	}
	if o.Version == 0 {
		return o, fmt.Errorf("%s: %w", id, order.ErrNotFound)
	}
	return o, nil
}

// Current is Load outside a transaction.
func (r *Repo) Current(ctx context.Context, id string) (order.Order, error) {
	return r.Load(ctx, r.pool, id)
}

// Replay rebuilds an order from all its events, ignoring snapshots.
func (r *Repo) Replay(ctx context.Context, id string) (order.Order, error) {
	var o order.Order
	events, err := eventstore.Load(ctx, r.pool, order.StreamID(id), 0)
	if err != nil {
		return o, err
	}
	return o, fold(&o, events)
}

// AsOf rebuilds an order as it stood at t; order.ErrNotFound before its
// first event.
func (r *Repo) AsOf(ctx context.Context, id string, t time.Time) (order.Order, error) {
	var o order.Order
	events, err := eventstore.LoadUntil(ctx, r.pool, order.StreamID(id), t)
	if err != nil {
		return o, err
	}
	if len(events) == 0 {
		return o, fmt.Errorf("%s at %s: %w", id, t.Format(time.RFC3339), order.ErrNotFound)
	}
	return o, fold(&o, events)
}

func fold(o *order.Order, events []eventstore.Event) error {
	for _, se := range events {
		e, err := order.Decode(se.Type, se.Schema, se.OccurredAt, se.Data)
		if err != nil {
			return fmt.Errorf("%s/%d: %w", se.StreamID, se.Version, err)
		}
		if err := o.Apply(e); err != nil {
			return err
		}
	}
	return nil
}

// Events returns an order's stored events, oldest first.
func (r *Repo) Events(ctx context.Context, id string) ([]eventstore.Event, error) {
	return eventstore.Load(ctx, r.pool, order.StreamID(id), 0)
}

// KeyOwner returns the order an idempotency key was used for.
func (r *Repo) KeyOwner(ctx context.Context, key string) (orderID string, fingerprint []byte, found bool, err error) {
	err = r.pool.QueryRow(ctx, `SELECT order_id, fingerprint FROM idempotency_keys WHERE key = $1`, key).Scan(&orderID, &fingerprint)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("look up idempotency key: %w", err)
	}
	return orderID, fingerprint, true, nil
}

// InTx runs f in a transaction, then Config.Committed.
func (r *Repo) InTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	if r.cfg.Committed != nil {
		defer r.cfg.Committed()
	}
	return postgres.InTx(ctx, r.pool, f)
}
