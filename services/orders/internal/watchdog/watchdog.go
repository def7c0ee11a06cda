// Package watchdog cancels orders whose saga stalled: a service down, a
// message stuck. An order still PENDING after the timeout is cancelled with
// reason saga_timeout, and the orders.cancelled it announces makes
// inventory release the stock and payments refund or never charge.
//
// It runs on the leader of the "orders-watchdog" election only, and fences
// its writes with the term's token (platform/election). It would still be
// correct on several replicas at once (each cancellation is an optimistic
// update of one order): the election saves the duplicate work.
package watchdog

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/election"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/internal/ordersdb"
	"github.com/example/sagasuite/services/orders/internal/readmodel"
	"github.com/example/sagasuite/services/orders/internal/saga"
)

// Config tunes the watchdog. The zero value is valid.
type Config struct {
	// Timeout is how long an order may stay PENDING; 0 means 30 s.
	Timeout time.Duration
	// Interval between scans; 0 means a quarter of Timeout, at most 5 s.
	Interval time.Duration
}

// Watchdog scans for stalled orders.
type Watchdog struct {
	repo    *ordersdb.Repo
	stalled StalledOrders
	metrics *saga.Metrics
	cfg     Config
	tracer  trace.Tracer
}

// StalledOrders finds orders PENDING since before cutoff (the read model).
type StalledOrders interface {
	Stalled(ctx context.Context, cutoff time.Time, limit int) ([]readmodel.Stalled, error)
}

// New returns a watchdog that finds stalled orders in stalled and
// cancels them through repo, tracing each cancellation through tel.
func New(repo *ordersdb.Repo, stalled StalledOrders, metrics *saga.Metrics, tel observe.Bundle, cfg Config) (*Watchdog, error) {
	if err := tel.For("watchdog"); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = min(cfg.Timeout/4, 5*time.Second)
	}
	return &Watchdog{repo: repo, stalled: stalled, metrics: metrics, cfg: cfg,
		tracer: tel.Tracer("github.com/example/sagasuite/services/orders/internal/watchdog")}, nil
}

// Interval is how often the leader scans (election.Setup runs Scan).
func (w *Watchdog) Interval() time.Duration { return w.cfg.Interval }

// Job is the fencing name of the watchdog.
const Job = "orders-watchdog"

// Scan cancels the orders PENDING for longer than Timeout and returns how
// many it cancelled.
func (w *Watchdog) Scan(ctx context.Context, token int64) (int, error) {
	stalled, err := w.stalled.Stalled(ctx, time.Now().Add(-w.cfg.Timeout), 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range stalled {
		// The cancellation joins the trace of the request that placed the order.
		parent := propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(s.Trace))
		sctx, span := w.tracer.Start(parent, "watchdog: cancel stalled order",
			trace.WithAttributes(attribute.String("order.id", s.ID), attribute.String("saga.timeout", w.cfg.Timeout.String())))
		var ok bool
		err := w.repo.InTx(sctx, func(tx pgx.Tx) error {
			if token > 0 {
				if err := election.Fence(sctx, tx, Job, token); err != nil {
					return err
				}
			}
			var err error
			ok, err = app.Finish(sctx, w.repo.In(tx), w.metrics, s.ID, map[string]string{"causation_type": "watchdog"},
				func(o *order.Order) (order.Event, error) { return o.Cancel(order.ReasonSagaTimeout, time.Now()) })
			return err
		})
		if err != nil {
			span.RecordError(err)
		}
		span.End()
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}
