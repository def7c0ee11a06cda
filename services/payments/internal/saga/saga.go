// Package saga is payments' Kafka adapter: it decodes the events of the
// orders and inventory contracts (inbox.On) and calls payments' use cases
// (package app) in the inbox's transaction, through paymentsdb. What
// payments does with each event, and why, is in app.
package saga

import (
	"context"
	"errors"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/internal/app"
	"github.com/example/sagasuite/services/payments/internal/paymentsdb"
)

// Topics payments consumes; it writes on paymentevents.Topic.
var Topics = []string{orderevents.Topic, inventoryevents.Topic}

// Sources names each topic's one producer: a message on it from any other
// ce_source is dead-lettered as forged (kafka.ConsumerConfig.Sources).
var Sources = map[string]string{orderevents.Topic: orderevents.Source, inventoryevents.Topic: inventoryevents.Source}

// Config tunes the provider calls (app.Config).
type Config = app.Config

// Handlers are the routes of the consumed topics, and the use cases they
// call (Call and Recover are the provider calls' own).
type Handlers struct {
	*app.Payments
	store *paymentsdb.Store
}

// New returns the handlers on store, reporting through tel. psp applies
// the retries, bulkheads and breaker (pspclient.Guards).
func New(store *paymentsdb.Store, psp app.PSP, tel observe.Bundle, cfg Config) (*Handlers, error) {
	p, err := app.New(store.App(), psp, tel, cfg)
	if err != nil {
		return nil, err
	}
	return &Handlers{Payments: p, store: store}, nil
}

// Routes maps every event type on the consumed topics to its handler.
func (h *Handlers) Routes() inbox.Routes {
	return inbox.Routes{
		orderevents.Placed:        inbox.On(h.placed),
		orderevents.Confirmed:     nil,
		orderevents.Rejected:      inbox.On(h.cancelled),
		orderevents.Cancelled:     inbox.On(h.cancelled),
		inventoryevents.Reserved:  inbox.On(h.reserved),
		inventoryevents.Rejected:  nil,
		inventoryevents.Committed: nil,
		inventoryevents.Released:  nil,
		inventoryevents.Expired:   nil, // orders cancels; payments acts on orders.cancelled
	}
}

var last4 = regexp.MustCompile(`^[0-9]{4}$`)

func (h *Handlers) placed(ctx context.Context, tx pgx.Tx, _ kafka.Message, e orderevents.OrderPlaced) error {
	if !last4.MatchString(e.Payment.CardLast4) {
		return kafka.Permanent(errors.New("orders.placed: payment.card_last4 is not four digits"))
	}
	return h.Placed(ctx, h.store.In(tx), e)
}

func (h *Handlers) reserved(ctx context.Context, tx pgx.Tx, _ kafka.Message, e inventoryevents.Ref) error {
	return h.Reserved(ctx, h.store.In(tx), e.OrderID)
}

func (h *Handlers) cancelled(ctx context.Context, tx pgx.Tx, m kafka.Message, e orderevents.OrderFinished) error {
	return h.Cancelled(ctx, h.store.In(tx), e.OrderID, m.Type)
}
