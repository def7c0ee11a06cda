// Package saga is orders' part in the order saga: it turns the outcomes
// that inventory and payments announce into the order's terminal status
// (confirmed once inventory committed the stock the payment paid for;
// rejected or cancelled on any failure),
// and announces every change of the order on orders.events, which is what
// sets the compensations going elsewhere (inventory releases stock,
// payments refunds).
//
// A late outcome for an order that is already finished changes nothing
// here: the order keeps its one terminal status, and the services that
// hold stock or money compensate on the orders.cancelled they received.
package saga

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/internal/ordersdb"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// Topics orders consumes; it writes on orderevents.Topic.
var Topics = []string{inventoryevents.Topic, paymentevents.Topic}

// Sources names each topic's one producer: a message on it from any other
// ce_source is dead-lettered as forged (kafka.ConsumerConfig.Sources).
var Sources = map[string]string{inventoryevents.Topic: inventoryevents.Source, paymentevents.Topic: paymentevents.Source}

// Metrics records saga outcomes.
type Metrics struct {
	duration metric.Float64Histogram
	finished func(time.Duration)
}

// NewMetrics registers the saga instruments through tel. finished, if not
// nil, is also told every finished saga's duration (the load shedder's
// signal).
func NewMetrics(finished func(time.Duration), tel observe.Bundle) (*Metrics, error) {
	if err := tel.For("saga metrics"); err != nil {
		return nil, err
	}
	d, err := tel.Meter("github.com/example/sagasuite/services/orders").Float64Histogram("saga.duration",
		metric.WithDescription("Time from POST /orders to the order's terminal status, by outcome and reason."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	if err != nil {
		return nil, err
	}
	return &Metrics{duration: d, finished: finished}, nil
}

// Finished records an order reaching its terminal status.
func (m *Metrics) Finished(ctx context.Context, o order.Order) {
	d := o.UpdatedAt.Sub(o.CreatedAt)
	if m.finished != nil {
		m.finished(d)
	}
	m.duration.Record(ctx, d.Seconds(), metric.WithAttributes(
		attribute.String("outcome", string(o.Status)), attribute.String("reason", o.Reason)))
}

// Handlers applies the outcomes of the other services.
type Handlers struct {
	repo    *ordersdb.Repo
	metrics *Metrics
	now     func() time.Time
}

// New returns the handlers.
func New(repo *ordersdb.Repo, metrics *Metrics) *Handlers {
	return &Handlers{repo: repo, metrics: metrics, now: time.Now}
}

// Routes maps every event type on the consumed topics to its handler.
func (h *Handlers) Routes() inbox.Routes {
	return inbox.Routes{
		inventoryevents.Reserved:  nil,
		inventoryevents.Rejected:  inbox.On(h.rejected),
		inventoryevents.Committed: inbox.On(h.committed),
		inventoryevents.Released:  nil,
		inventoryevents.Expired:   inbox.On(h.expired),
		// Authorized is not enough: inventory may have let the
		// reservation expire meanwhile. It commits the stock only if it
		// still holds it, and that (inventory.committed) confirms.
		paymentevents.Authorized: nil,
		paymentevents.Declined:   inbox.On(h.declined),
		paymentevents.Failed:     inbox.On(h.failed),
		paymentevents.Refunded:   nil,
	}
}

func (h *Handlers) rejected(ctx context.Context, tx pgx.Tx, m kafka.Message, e inventoryevents.Ref) error {
	return h.finish(ctx, tx, m, e.OrderID, func(o *order.Order) (order.Event, error) {
		return o.Reject(order.ReasonOutOfStock, h.now())
	})
}

// expired: inventory gave the stock back after the reservation timed out,
// so the saga is over for this order.
func (h *Handlers) expired(ctx context.Context, tx pgx.Tx, m kafka.Message, e inventoryevents.Ref) error {
	return h.finish(ctx, tx, m, e.OrderID, func(o *order.Order) (order.Event, error) {
		return o.Cancel(order.ReasonSagaTimeout, h.now())
	})
}

// committed: the payment was authorized and inventory turned the
// reservation into a sale; both facts are in, the order is confirmed.
// Inventory commits only a reservation it still holds, so an order whose
// reservation expired while its payment went through is never confirmed:
// inventory.expired cancels it, and payments refunds.
func (h *Handlers) committed(ctx context.Context, tx pgx.Tx, m kafka.Message, e inventoryevents.Ref) error {
	return h.finish(ctx, tx, m, e.OrderID, func(o *order.Order) (order.Event, error) {
		return o.Confirm(h.now())
	})
}

func (h *Handlers) declined(ctx context.Context, tx pgx.Tx, m kafka.Message, e paymentevents.PaymentOutcome) error {
	return h.finish(ctx, tx, m, e.OrderID, func(o *order.Order) (order.Event, error) {
		reason := e.Reason
		if reason != paymentevents.ReasonCardDeclined && reason != paymentevents.ReasonInsufficientFunds {
			reason = order.ReasonCardDeclined
		}
		return o.Cancel(reason, h.now())
	})
}

func (h *Handlers) failed(ctx context.Context, tx pgx.Tx, m kafka.Message, e paymentevents.PaymentOutcome) error {
	return h.finish(ctx, tx, m, e.OrderID, func(o *order.Order) (order.Event, error) {
		return o.Cancel(order.ReasonPaymentUnavailable, h.now())
	})
}

// finish moves the order to the status decide gives it (app.Finish), with
// the message as its cause.
func (h *Handlers) finish(ctx context.Context, tx pgx.Tx, m kafka.Message, orderID string, decide func(*order.Order) (order.Event, error)) error {
	meta := map[string]string{"causation_id": m.ID, "causation_type": m.Type}
	_, err := app.Finish(ctx, h.repo.In(tx), h.metrics, orderID, meta, decide)
	if errors.Is(err, order.ErrNotFound) {
		return kafka.Permanent(err) // no such order here: nothing will ever make it apply
	}
	return err
}
