// Package saga is inventory's part in the order saga: it reserves stock
// when an order is placed, commits it when the payment is authorized (if
// it still holds it: that commit is what confirms the order), and
// releases it (the compensation) when the payment fails or the order is
// cancelled or rejected. Each handler runs in one transaction with the
// inbox record and the outgoing event (outbox), so it happens exactly once.
package saga

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/internal/inventorydb"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// Topics inventory consumes; it writes on inventoryevents.Topic.
var Topics = []string{orderevents.Topic, paymentevents.Topic}

// Handlers applies saga events to the stock.
type Handlers struct {
	store  *inventorydb.Store
	tracer trace.Tracer
}

// New returns the handlers.
func New(store *inventorydb.Store, tp trace.TracerProvider) *Handlers {
	return &Handlers{store: store, tracer: tp.Tracer("github.com/example/sagasuite/services/inventory/internal/saga")}
}

// Routes maps every event type on the consumed topics to its handler;
// types inventory does not act on map to nil.
func (h *Handlers) Routes() inbox.Routes {
	return inbox.Routes{
		orderevents.Placed:       h.reserve,
		orderevents.Confirmed:    nil,
		orderevents.Rejected:     h.release,
		orderevents.Cancelled:    h.release,
		paymentevents.Authorized: h.commit,
		paymentevents.Declined:   h.release,
		paymentevents.Failed:     h.release,
		paymentevents.Refunded:   nil,
	}
}

func (h *Handlers) reserve(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := kafka.DecodeValid[orderevents.OrderPlaced](m)
	if err != nil {
		return err
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order.id", e.OrderID))
	items := make([]catalog.Item, len(e.Items))
	reserved := inventoryevents.StockReserved{OrderID: e.OrderID, Items: make([]inventoryevents.Item, len(e.Items))}
	for i, it := range e.Items {
		items[i] = catalog.Item{SKU: it.SKU, Quantity: it.Quantity}
		reserved.Items[i] = inventoryevents.Item{SKU: it.SKU, Quantity: it.Quantity}
	}
	err = h.store.Reserve(ctx, tx, e.OrderID, items)
	switch {
	case errors.Is(err, catalog.ErrOutOfStock):
		return emit(ctx, tx, inventoryevents.Rejected, e.OrderID, inventoryevents.StockRejected{
			OrderID: e.OrderID, Reason: inventoryevents.ReasonOutOfStock, Detail: err.Error()})
	case err != nil:
		return err
	}
	return emit(ctx, tx, inventoryevents.Reserved, e.OrderID, reserved)
}

func (h *Handlers) commit(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := kafka.DecodeValid[paymentevents.PaymentOutcome](m)
	if err != nil {
		return err
	}
	committed, err := h.store.Commit(ctx, tx, e.OrderID)
	if err != nil {
		return err
	}
	if !committed {
		// Nothing held any more: the reservation was released first (it
		// expired, or the order was cancelled). Orders confirms only on
		// inventory.committed, so this order is not confirmed; the
		// release's own event (inventory.expired, orders.cancelled)
		// cancels it, and payments refunds the charge on orders.cancelled.
		trace.SpanFromContext(ctx).AddEvent("payment authorized after the reservation was released: not committed; the order is cancelled and refunded",
			trace.WithAttributes(attribute.String("order.id", e.OrderID)))
		return nil
	}
	return emit(ctx, tx, inventoryevents.Committed, e.OrderID, inventoryevents.StockCommitted{OrderID: e.OrderID})
}

func (h *Handlers) release(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := kafka.DecodeValid[orderRef](m)
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
	return emit(ctx, tx, inventoryevents.Released, e.OrderID, inventoryevents.StockReleased{OrderID: e.OrderID, Reason: m.Type})
}

// orderRef is what release needs of the orders and payments events that
// trigger it: every one of them carries the order id.
type orderRef struct {
	OrderID string `json:"order_id"`
}

// Validate reports a missing order id.
func (r orderRef) Validate() error {
	if r.OrderID == "" {
		return errors.New("order_id is empty")
	}
	return nil
}

func emit(ctx context.Context, tx pgx.Tx, typ, orderID string, data any) error {
	ev, err := kafka.NewEvent(typ, inventoryevents.Source, orderID, data)
	if err != nil {
		return err
	}
	return outbox.Write(ctx, tx, outbox.Message{Topic: inventoryevents.Topic, Event: ev})
}
