// Package saga is inventory's part in the order saga: it reserves stock
// when an order is placed, commits it when the payment is authorized, and
// releases it (the compensation) when the payment fails or the order is
// cancelled or rejected. Each handler runs in one transaction with the
// inbox record and the outgoing event (outbox), so it happens exactly once.
package saga

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/internal/postgres"
)

// Topics.
const (
	OrdersTopic    = "orders.events"
	PaymentsTopic  = "payments.events"
	InventoryTopic = "inventory.events"
	source         = "/inventory"
)

// Handlers applies saga events to the stock.
type Handlers struct {
	store  *postgres.Store
	tracer trace.Tracer
}

// New returns the handlers.
func New(store *postgres.Store, tp trace.TracerProvider) *Handlers {
	return &Handlers{store: store, tracer: tp.Tracer("github.com/example/sagasuite/services/inventory/internal/saga")}
}

// Routes maps every event type on the consumed topics to its handler;
// types inventory does not act on map to nil.
func (h *Handlers) Routes() inbox.Routes {
	return inbox.Routes{
		"orders.placed":       h.reserve,
		"orders.confirmed":    nil,
		"orders.rejected":     h.release,
		"orders.cancelled":    h.release,
		"payments.authorized": h.commit,
		"payments.declined":   h.release,
		"payments.failed":     h.release,
		"payments.refunded":   nil,
	}
}

type orderPlaced struct {
	OrderID string         `json:"order_id"`
	Items   []catalog.Item `json:"items"`
}

type orderRef struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

func (h *Handlers) reserve(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	var e orderPlaced
	if err := m.Decode(&e); err != nil {
		return err
	}
	if e.OrderID == "" || len(e.Items) == 0 {
		return kafka.Permanent(errors.New("orders.placed without order_id or items"))
	}
	for _, it := range e.Items {
		if it.SKU == "" || it.Quantity <= 0 {
			return kafka.Permanent(fmt.Errorf("orders.placed %s: bad item %+v", e.OrderID, it))
		}
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order.id", e.OrderID))
	err := h.store.Reserve(ctx, tx, e.OrderID, e.Items)
	switch {
	case errors.Is(err, catalog.ErrOutOfStock):
		return emit(ctx, tx, "inventory.rejected", e.OrderID, map[string]string{
			"order_id": e.OrderID, "reason": "out_of_stock", "detail": err.Error()})
	case err != nil:
		return err
	}
	return emit(ctx, tx, "inventory.reserved", e.OrderID, map[string]any{"order_id": e.OrderID, "items": e.Items})
}

func (h *Handlers) commit(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := decodeRef(m)
	if err != nil {
		return err
	}
	committed, err := h.store.Commit(ctx, tx, e.OrderID)
	if err != nil || !committed {
		return err // nothing held: released earlier, and payments refunds
	}
	return emit(ctx, tx, "inventory.committed", e.OrderID, map[string]string{"order_id": e.OrderID})
}

func (h *Handlers) release(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := decodeRef(m)
	if err != nil {
		return err
	}
	ctx, span := h.tracer.Start(ctx, "compensate: release stock", trace.WithAttributes(
		attribute.String("order.id", e.OrderID), attribute.String("saga.compensation", "release_stock"),
		attribute.String("saga.trigger", m.Type)))
	defer span.End()
	released, err := h.store.Release(ctx, tx, e.OrderID)
	if err != nil {
		span.RecordError(err)
		return err
	}
	span.SetAttributes(attribute.Bool("inventory.released", released))
	if !released {
		return nil // nothing was held: rejected before reserving, or released already
	}
	return emit(ctx, tx, "inventory.released", e.OrderID, map[string]string{"order_id": e.OrderID, "reason": m.Type})
}

func decodeRef(m kafka.Message) (orderRef, error) {
	var e orderRef
	if err := m.Decode(&e); err != nil {
		return e, err
	}
	if e.OrderID == "" {
		return e, kafka.Permanent(fmt.Errorf("%s without order_id", m.Type))
	}
	return e, nil
}

func emit(ctx context.Context, tx pgx.Tx, typ, orderID string, data any) error {
	ev, err := kafka.NewEvent(typ, source, orderID, data)
	if err != nil {
		return err
	}
	return outbox.Write(ctx, tx, outbox.Message{Topic: InventoryTopic, Event: ev})
}
