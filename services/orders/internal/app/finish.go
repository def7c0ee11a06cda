package app

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/services/orders/internal/announce"
	"github.com/example/sagasuite/services/orders/internal/order"
)

// Tx is the order store inside a transaction someone else opened: the
// inbox's for an outcome the other services announced, the watchdog's for
// a stalled order. ordersdb implements it (Repo.In).
type Tx interface {
	// Decide loads order id (order.ErrNotFound when there is none), lets
	// decide look at it, and appends the events it returns with meta and
	// writes its messages to the outbox, all in the transaction. A
	// concurrent change of the order fails it with
	// eventstore.ErrVersionConflict.
	Decide(ctx context.Context, id string, meta map[string]string,
		decide func(o *order.Order) ([]order.Event, []outbox.Message, error)) (order.Order, error)
	// AfterCommit runs f once the transaction has committed; false when
	// the transaction is not one that runs anything after its commit
	// (the watchdog's).
	AfterCommit(ctx context.Context, f func(ctx context.Context) error) bool
}

// Outcomes hears of every order that reached its terminal status, once
// that is committed: the saga's duration metric and the load shedder.
type Outcomes interface {
	Finished(ctx context.Context, o order.Order)
}

// Finish moves order id to its terminal status with decide, and
// announces it (orders.confirmed, rejected or cancelled), which is what
// sets the compensations going elsewhere. An order that is already
// finished is left as it is and reported with ok false: it keeps its one
// terminal status, and the services holding stock or money compensate on
// the cancellation they received. A concurrent change of the order makes
// it fail with eventstore.ErrVersionConflict: the caller retries (the
// consumer redelivers, the watchdog looks again on its next scan).
func Finish(ctx context.Context, tx Tx, outcomes Outcomes, id string, meta map[string]string,
	decide func(o *order.Order) (order.Event, error)) (ok bool, err error) {
	o, err := tx.Decide(ctx, id, meta, func(o *order.Order) ([]order.Event, []outbox.Message, error) {
		e, err := decide(o)
		if errors.Is(err, order.ErrFinished) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		after := *o
		if err := after.Apply(e); err != nil {
			return nil, nil, err
		}
		msg, err := announce.Finished(after)
		if err != nil {
			return nil, nil, err
		}
		ok = true
		return []order.Event{e}, []outbox.Message{msg}, nil
	})
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("order.id", id), attribute.String("order.status", string(o.Status)))
	if err != nil {
		return false, err
	}
	if !ok {
		span.AddEvent("order already finished: outcome ignored")
		return false, nil
	}
	// Counted once committed: a batch that rolls back is applied again
	// message by message. The watchdog's own transaction has no
	// after-commit hook: it counts here.
	if !tx.AfterCommit(ctx, func(ctx context.Context) error { outcomes.Finished(ctx, o); return nil }) {
		outcomes.Finished(ctx, o)
	}
	return true, nil
}
