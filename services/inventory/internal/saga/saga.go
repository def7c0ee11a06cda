// Package saga is inventory's Kafka adapter: it maps the events of the
// orders and payments contracts to inventory's use cases (package app):
// reserve when an order is placed, commit when its payment is authorized,
// release (the compensation) when the payment fails or the order is
// cancelled or rejected; and it runs the expiry job. Each handler runs in
// the inbox's transaction, with the inbox record and the outgoing event
// (outbox), so it happens exactly once.
package saga

import (
	"context"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/inventory/internal/app"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/internal/inventorydb"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// Topics inventory consumes; it writes on inventoryevents.Topic.
var Topics = []string{orderevents.Topic, paymentevents.Topic}

// Sources names each topic's one producer: a message on it from any other
// ce_source is dead-lettered as forged (kafka.ConsumerConfig.Sources).
var Sources = map[string]string{orderevents.Topic: orderevents.Source, paymentevents.Topic: paymentevents.Source}

// Handlers applies saga events to the stock: each decodes its event
// (inbox.On) and calls the use case of app in the message's transaction.
type Handlers struct {
	store  *inventorydb.Store
	tracer trace.Tracer
}

// New returns the handlers, tracing each use case through tel.
func New(store *inventorydb.Store, tel observe.Bundle) (*Handlers, error) {
	if err := tel.For("inventory saga"); err != nil {
		return nil, err
	}
	return &Handlers{store: store, tracer: tel.Tracer("github.com/example/sagasuite/services/inventory/internal/saga")}, nil
}

// Routes maps every event type on the consumed topics to its handler;
// types inventory does not act on map to nil.
func (h *Handlers) Routes() inbox.Routes {
	return inbox.Routes{
		orderevents.Placed:       inbox.On(h.reserve),
		orderevents.Confirmed:    nil,
		orderevents.Rejected:     inbox.On(h.releaseOrder),
		orderevents.Cancelled:    inbox.On(h.releaseOrder),
		paymentevents.Authorized: inbox.On(h.commit),
		paymentevents.Declined:   inbox.On(h.releasePayment),
		paymentevents.Failed:     inbox.On(h.releasePayment),
		paymentevents.Refunded:   nil,
	}
}

func (h *Handlers) reserve(ctx context.Context, tx pgx.Tx, _ kafka.Message, e orderevents.OrderPlaced) error {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("order.id", e.OrderID))
	items := make([]catalog.Item, len(e.Items))
	for i, it := range e.Items {
		items[i] = catalog.Item{SKU: it.SKU, Quantity: it.Quantity}
	}
	reserved, err := app.Reserve(ctx, h.store.In(tx), e.OrderID, items)
	span.SetAttributes(attribute.Bool("inventory.reserved", reserved))
	return err
}

func (h *Handlers) commit(ctx context.Context, tx pgx.Tx, _ kafka.Message, e paymentevents.PaymentOutcome) error {
	committed, err := app.Commit(ctx, h.store.In(tx), e.OrderID)
	if err == nil && !committed {
		// Nothing held any more: the reservation was released first (it
		// expired, or the order was cancelled). The release's own event
		// cancels the order, and payments refunds.
		trace.SpanFromContext(ctx).AddEvent("payment authorized after the reservation was released: not committed; the order is cancelled and refunded",
			trace.WithAttributes(attribute.String("order.id", e.OrderID)))
	}
	return err
}

func (h *Handlers) releaseOrder(ctx context.Context, tx pgx.Tx, m kafka.Message, e orderevents.Ref) error {
	return h.release(ctx, tx, m.Type, e.OrderID)
}

func (h *Handlers) releasePayment(ctx context.Context, tx pgx.Tx, m kafka.Message, e paymentevents.Ref) error {
	return h.release(ctx, tx, m.Type, e.OrderID)
}

func (h *Handlers) release(ctx context.Context, tx pgx.Tx, trigger, orderID string) error {
	ctx, span := h.tracer.Start(ctx, "compensate: release stock", trace.WithAttributes(
		attribute.String("order.id", orderID), attribute.String("saga.compensation", "release_stock"),
		attribute.String("saga.trigger", trigger)))
	defer span.End()
	released, err := app.Release(ctx, h.store.In(tx), orderID, trigger)
	if err != nil {
		span.RecordError(err)
		return err
	}
	span.SetAttributes(attribute.Bool("inventory.released", released))
	return nil
}

// Lock takes, before a batch's handlers run (inbox.BatchLocking), every
// row lock they will take, in one order: the reservations of the batch's
// orders (by order and SKU), then the products of the placed orders'
// items and of those reservations (by SKU). Each handler then locks only
// rows its transaction holds already, so two batches never deadlock on
// the product rows every order shares, and a batch costs one transaction
// instead of one per message. A message whose data does not decode locks
// nothing here: its handler reports it.
func (h *Handlers) Lock(ctx context.Context, tx pgx.Tx, msgs []kafka.Message) error {
	var skus, orders []string
	for _, m := range msgs {
		if m.Type == orderevents.Placed {
			if e, err := kafka.DecodeValid[orderevents.OrderPlaced](m); err == nil {
				for _, it := range e.Items {
					skus = append(skus, it.SKU)
				}
			}
			continue
		}
		// Every other type inventory acts on names the order whose
		// reservations it changes.
		var ref struct {
			OrderID string `json:"order_id"`
		}
		if m.Decode(&ref) == nil && ref.OrderID != "" {
			orders = append(orders, ref.OrderID)
		}
	}
	return h.store.LockBatch(ctx, tx, skus, orders)
}
