// Package postgres stores orders: their events in the event store (the
// source of truth), a read-model row per order written in the same
// transaction, idempotency keys, and the outbox messages that announce
// each change.
package postgres

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
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/services/orders/internal/order"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is orders' own schema; the event store's comes with it.
func Migrations() fs.FS { return postgres.Dir(migrations, "migrations") }

// ErrKeyTaken means the idempotency key was stored by another request.
var ErrKeyTaken = errors.New("idempotency key already used")

// Repo is the orders repository. It owns its transactions, except in
// Update, which joins the caller's (the inbox's) transaction.
type Repo struct{ pool *pgxpool.Pool }

// New returns a repository on pool.
func New(pool *pgxpool.Pool) *Repo { return &Repo{pool: pool} }

func stream(id string) string { return "order-" + id }

// Key is an idempotency key and the fingerprint of the request it was used with.
type Key struct {
	Key         string
	Fingerprint []byte
}

// Create stores a new order: its first event, its read-model row, the
// idempotency key if any, and msgs, in one transaction. It returns
// ErrKeyTaken when a concurrent request stored the same key first.
func (r *Repo) Create(ctx context.Context, placed order.Event, key *Key, msgs ...outbox.Message) (order.Order, error) {
	var o order.Order
	p, ok := placed.Data.(order.Placed)
	if !ok {
		return o, fmt.Errorf("create order from %s: want %s", placed.Type, order.TypePlaced)
	}
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		o = order.Order{}
		if key != nil {
			_, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (key, fingerprint, order_id) VALUES ($1, $2, $3)`, key.Key, key.Fingerprint, p.OrderID)
			if postgres.IsUniqueViolation(err, "") {
				return ErrKeyTaken
			}
			if err != nil {
				return fmt.Errorf("store idempotency key: %w", err)
			}
		}
		if err := r.append(ctx, tx, &o, 0, []order.Event{placed}, nil); err != nil {
			return err
		}
		carrier := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, carrier)
		items, _ := json.Marshal(o.Items)
		tc, _ := json.Marshal(carrier)
		if _, err := tx.Exec(ctx, `INSERT INTO orders_view (order_id, customer_id, status, reason, items, total_cents, version, created_at, updated_at, trace_context)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			o.ID, o.CustomerID, o.Status, o.Reason, items, o.TotalCents, o.Version, o.CreatedAt, o.UpdatedAt, tc); err != nil {
			return fmt.Errorf("insert order view: %w", err)
		}
		return outbox.Write(ctx, tx, msgs...)
	})
	return o, err
}

// Decision is what a command decided: events to append and messages to send.
type Decision struct {
	Events   []order.Event
	Messages []outbox.Message
	// Meta is stored with each event (causation_id, …); trace ids are added.
	Meta map[string]string
}

// Update loads order id in tx, locking it against concurrent commands,
// lets decide look at it, and stores what it decided. It returns the order
// as it stands after the change and order.ErrNotFound for an unknown id.
func (r *Repo) Update(ctx context.Context, tx pgx.Tx, id string, decide func(o *order.Order) (Decision, error)) (order.Order, error) {
	var locked string
	if err := tx.QueryRow(ctx, `SELECT order_id FROM orders_view WHERE order_id = $1 FOR UPDATE`, id).Scan(&locked); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return order.Order{}, fmt.Errorf("%s: %w", id, order.ErrNotFound)
		}
		return order.Order{}, fmt.Errorf("lock order %s: %w", id, err)
	}
	o, err := r.load(ctx, tx, id)
	if err != nil {
		return o, err
	}
	d, err := decide(&o)
	if err != nil || len(d.Events) == 0 {
		return o, err
	}
	if err := r.append(ctx, tx, &o, o.Version, d.Events, d.Meta); err != nil {
		return o, err
	}
	if _, err := tx.Exec(ctx, `UPDATE orders_view SET status = $2, reason = $3, version = $4, updated_at = $5 WHERE order_id = $1`,
		o.ID, o.Status, o.Reason, o.Version, o.UpdatedAt); err != nil {
		return o, fmt.Errorf("update order view: %w", err)
	}
	return o, outbox.Write(ctx, tx, d.Messages...)
}

// append applies events to o and stores them at version expected, with
// meta, the order id as correlation id and the current trace's ids.
func (r *Repo) append(ctx context.Context, tx pgx.Tx, o *order.Order, expected int64, events []order.Event, meta map[string]string) error {
	for _, e := range events {
		if err := o.Apply(e); err != nil {
			return err
		}
	}
	m := map[string]string{"correlation_id": o.ID}
	for k, v := range meta {
		m[k] = v
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		m["trace_id"], m["span_id"] = sc.TraceID().String(), sc.SpanID().String()
	}
	news := make([]eventstore.NewEvent, len(events))
	for i, e := range events {
		data, err := order.Encode(e)
		if err != nil {
			return err
		}
		news[i] = eventstore.NewEvent{Type: e.Type, Data: data, Metadata: m, OccurredAt: e.At}
	}
	_, err := eventstore.Append(ctx, tx, stream(o.ID), expected, news...)
	return err
}

func (r *Repo) load(ctx context.Context, q eventstore.Querier, id string) (order.Order, error) {
	var o order.Order
	events, err := eventstore.Load(ctx, q, stream(id))
	if err != nil {
		return o, err
	}
	if len(events) == 0 {
		return o, fmt.Errorf("%s: %w", id, order.ErrNotFound)
	}
	for _, se := range events {
		e, err := order.Decode(se.Type, se.OccurredAt, se.Data)
		if err != nil {
			return o, err
		}
		if err := o.Apply(e); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Get returns an order from the read model, or order.ErrNotFound.
func (r *Repo) Get(ctx context.Context, id string) (order.Order, error) {
	var o order.Order
	var items []byte
	err := r.pool.QueryRow(ctx, `SELECT order_id, customer_id, status, reason, items, total_cents, version, created_at, updated_at
		FROM orders_view WHERE order_id = $1`, id).
		Scan(&o.ID, &o.CustomerID, &o.Status, &o.Reason, &items, &o.TotalCents, &o.Version, &o.CreatedAt, &o.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, fmt.Errorf("%s: %w", id, order.ErrNotFound)
	}
	if err != nil {
		return o, fmt.Errorf("get order %s: %w", id, err)
	}
	if err := json.Unmarshal(items, &o.Items); err != nil {
		return o, fmt.Errorf("order %s items: %w", id, err)
	}
	return o, nil
}

// Events returns an order's stored events, oldest first.
func (r *Repo) Events(ctx context.Context, id string) ([]eventstore.Event, error) {
	return eventstore.Load(ctx, r.pool, stream(id))
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

// Stalled is a PENDING order older than the cutoff, with the trace context
// of the request that placed it.
type Stalled struct {
	ID    string
	Trace map[string]string
}

// Stalled returns up to limit orders PENDING since before cutoff, oldest first.
func (r *Repo) Stalled(ctx context.Context, cutoff time.Time, limit int) ([]Stalled, error) {
	rows, err := r.pool.Query(ctx, `SELECT order_id, trace_context FROM orders_view
		WHERE status = 'PENDING' AND created_at < $1 ORDER BY created_at LIMIT $2`, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("find stalled orders: %w", err)
	}
	defer rows.Close()
	var out []Stalled
	for rows.Next() {
		var s Stalled
		var tc []byte
		if err := rows.Scan(&s.ID, &tc); err != nil {
			return nil, fmt.Errorf("find stalled orders: %w", err)
		}
		_ = json.Unmarshal(tc, &s.Trace)
		out = append(out, s)
	}
	return out, rows.Err()
}

// InTx runs f in a transaction.
func (r *Repo) InTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, r.pool, f)
}
