// Package readmodel projects order events into order_summaries, the table
// GET /orders and GET /orders/{id} read (the query side of CQRS). Every
// statement is guarded by the stream version, so applying an event twice
// (a replayed batch) changes nothing.
package readmodel

import (
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/services/orders/internal/order"
)

// Name and Table identify the projection.
const (
	Name  = "order_summaries"
	Table = "order_summaries"
)

// Projection is the projection.Handler of order summaries.
type Projection struct{}

// Apply queues the statements for e.
func (Projection) Apply(b *pgx.Batch, table string, e eventstore.Event) error {
	id, ok := order.IDOfStream(e.StreamID)
	if !ok {
		return nil // not an order
	}
	ev, err := order.Decode(e.Type, e.Schema, e.OccurredAt, e.Data)
	if err != nil {
		return err
	}
	t := pgx.Identifier{table}.Sanitize()
	switch d := ev.Data.(type) {
	case order.Placed:
		items, err := json.Marshal(d.Items)
		if err != nil {
			return err
		}
		traceCtx, _ := json.Marshal(map[string]string{"traceparent": e.Metadata["traceparent"]})
		b.Queue(fmt.Sprintf(`INSERT INTO %s (order_id, customer_id, status, reason, items, total_cents, currency, notes, version, created_at, updated_at, trace_context)
			VALUES ($1, $2, 'PENDING', '', $3, $4, $5, 0, $6, $7, $7, $8) ON CONFLICT (order_id) DO NOTHING`, t),
			id, d.CustomerID, items, d.TotalCents, d.Currency, e.Version, e.OccurredAt, traceCtx)
	case order.Finished:
		status, _ := order.StatusAfter(e.Type)
		b.Queue(fmt.Sprintf(`UPDATE %s SET status = $2, reason = $3, version = $4, updated_at = $5 WHERE order_id = $1 AND version < $4`, t),
			id, string(status), d.Reason, e.Version, e.OccurredAt)
	case order.NoteAdded:
		b.Queue(fmt.Sprintf(`UPDATE %s SET notes = notes + 1, version = $2, updated_at = $3 WHERE order_id = $1 AND version < $2`, t),
			id, e.Version, e.OccurredAt)
	default:
		return fmt.Errorf("no projection for %T", ev.Data)
	}
	return nil
}
