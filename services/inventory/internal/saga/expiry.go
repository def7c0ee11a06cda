package saga

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/election"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/inventory/internal/app"
	"github.com/example/sagasuite/services/inventory/internal/inventorydb"
)

// ExpiryJob is the fencing and election name of the expiry job.
const ExpiryJob = "inventory-expiry"

// Expiry releases reservations stuck RESERVED longer than TTL (a saga that
// never reached a payment outcome) and announces inventory.expired, on
// which orders cancels the order and payments refunds or never charges.
// It is a backstop behind the orders watchdog: keep TTL well above
// SAGA_TIMEOUT. It runs as a singleton (election ExpiryJob).
type Expiry struct {
	store    *inventorydb.Store
	ttl      time.Duration
	interval time.Duration
	tracer   trace.Tracer
	scans    metric.Int64Counter
	released metric.Int64Counter
}

// ExpiryConfig tunes the job. The zero value is valid.
type ExpiryConfig struct {
	// TTL is how long a reservation may stay RESERVED; 0 means 5 minutes.
	TTL time.Duration
	// Interval between scans; 0 means a quarter of TTL, at most 10 s.
	Interval time.Duration
}

// NewExpiry returns the job, reporting its scans and releases through tel.
func NewExpiry(store *inventorydb.Store, tel observe.Bundle, cfg ExpiryConfig) (*Expiry, error) {
	if err := tel.For("reservation expiry"); err != nil {
		return nil, err
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.Interval <= 0 {
		cfg.Interval = min(cfg.TTL/4, 10*time.Second)
	}
	x := &Expiry{store: store, ttl: cfg.TTL, interval: cfg.Interval, tracer: tel.Tracer("github.com/example/sagasuite/services/inventory/internal/saga")}
	meter := tel.Meter("github.com/example/sagasuite/services/inventory")
	var err error
	if x.scans, err = meter.Int64Counter("inventory.expiry.scans", metric.WithDescription("Scans for expired reservations (on the leader only)."),
		metric.WithUnit("{scan}")); err != nil {
		return nil, err
	}
	x.released, err = meter.Int64Counter("inventory.expiry.released", metric.WithDescription("Orders whose expired reservations were released."),
		metric.WithUnit("{order}"))
	return x, err
}

// Interval is how often the leader scans (election.Setup runs Scan).
func (x *Expiry) Interval() time.Duration { return x.interval }

// Scan releases what has expired and returns how many orders it released.
func (x *Expiry) Scan(ctx context.Context, token int64) (int, error) {
	x.scans.Add(ctx, 1)
	expired, err := x.store.Expired(ctx, time.Now().Add(-x.ttl), 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range expired {
		released, err := x.Expire(ctx, token, e)
		if err != nil {
			return n, err
		}
		if released {
			n++
		}
	}
	return n, nil
}

// Expire releases one order Scan found, if it is still only reserved when
// locked: a payment may have committed it since the scan read it, and
// then it is confirmed and keeps its stock. It reports whether it released.
func (x *Expiry) Expire(ctx context.Context, token int64, e inventorydb.Expired) (bool, error) {
	id := e.OrderID
	// The compensation joins the order's trace (where it reserved).
	parent := propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": e.Traceparent})
	sctx, span := x.tracer.Start(parent, "compensate: expire reservation", trace.WithAttributes(
		attribute.String("order.id", id), attribute.String("saga.compensation", "release_stock"), attribute.Int64("fencing.token", token)))
	defer span.End()
	var released bool
	err := x.store.InTx(sctx, func(tx pgx.Tx) error {
		if token > 0 {
			if err := election.Fence(sctx, tx, ExpiryJob, token); err != nil {
				return err
			}
		}
		var err error
		released, err = app.Expire(sctx, x.store.In(tx), id)
		return err
	})
	span.SetAttributes(attribute.Bool("inventory.released", released))
	if err != nil {
		span.RecordError(err)
		return false, err
	}
	if released {
		x.released.Add(ctx, 1)
	}
	return released, nil
}
