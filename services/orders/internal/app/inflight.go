package app

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/admission"
	"github.com/example/sagasuite/platform/observe"
)

// Limiter decides whether a new saga may start (platform/admission).
type Limiter interface {
	Admit(inflight int64) error
}

// ErrOverloaded means the order was refused at the door: more sagas are
// in flight than the suite can finish within the saga objective, or the
// outbox holds as much as it may while Kafka is away.
var ErrOverloaded = admission.ErrOverloaded

// Outbox says what waits in the outbox to be published: the orders whose
// orders.placed has not left yet (their saga has not started anywhere),
// and every row.
type Outbox interface {
	Waiting(ctx context.Context) (placed, all int64, err error)
}

// InFlight counts sagas in flight: orders PENDING in the read model,
// shared by every replica, read every refresh, plus what this replica
// accepted since the last read, less the orders whose orders.placed still
// waits in the outbox (or left it in the last 100 ms: the relay deletes
// what it published ten times a second, so at 200 orders/s the count is
// about 20 low, which the adaptive limit absorbs). Counting from the
// store, not from a counter in memory, keeps the figure right across
// restarts and replicas.
//
// An order waiting in the outbox costs a row and nothing else: no service
// works on it until Kafka takes it. That is what the outbox is for: while
// the broker is away (a restart, a pause), orders keep being accepted
// instead of shed, up to BacklogLimit rows; past that they are refused
// (orders.shed{reason="outbox_backlog"}), so the backlog the broker meets
// when it comes back stays bounded.
type InFlight struct {
	reader       Reader
	outbox       Outbox
	backlogLimit int64
	interval     time.Duration
	log          *slog.Logger
	pending      atomic.Int64 // sagas in flight at the last read
	backlog      atomic.Int64 // outbox rows at the last read
	accepted     atomic.Int64 // since the last read
}

// InFlightConfig tunes InFlight. The zero value is valid.
type InFlightConfig struct {
	// BacklogLimit bounds the outbox; 0 means 5,000 rows.
	BacklogLimit int64
	// Interval is how often Run reads the count; 0 means 100 ms.
	Interval time.Duration
}

// NewInFlight returns a counter over reader's PENDING orders and outbox's
// waiting rows, exporting the saga.in_flight gauge through tel.
func NewInFlight(reader Reader, outbox Outbox, tel observe.Bundle, cfg InFlightConfig) (*InFlight, error) {
	if err := tel.For("sagas in flight"); err != nil {
		return nil, err
	}
	if cfg.BacklogLimit <= 0 {
		cfg.BacklogLimit = 5000
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	f := &InFlight{reader: reader, outbox: outbox, backlogLimit: cfg.BacklogLimit, interval: cfg.Interval, log: tel.Logger}
	meter := tel.Meter("github.com/example/sagasuite/services/orders")
	g, err := meter.Int64ObservableGauge("saga.in_flight", metric.WithDescription(
		"Orders accepted and not yet in a terminal status, less those whose orders.placed still waits in the outbox."),
		metric.WithUnit("{saga}"))
	if err != nil {
		return nil, err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(g, f.Count())
		return nil
	}, g)
	return f, err
}

// Count is the sagas in flight as last known.
func (f *InFlight) Count() int64 { return f.pending.Load() + f.accepted.Load() }

// Full reports whether the outbox holds as many rows as it may.
func (f *InFlight) Full() bool { return f.backlog.Load() >= f.backlogLimit }

// Run refreshes the count every InFlightConfig.Interval until ctx ends.
func (f *InFlight) Run(ctx context.Context) error {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		if err := f.Refresh(ctx); err != nil && ctx.Err() == nil {
			f.log.WarnContext(ctx, "count sagas in flight", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh reads the count from the store now (Run does every interval).
func (f *InFlight) Refresh(ctx context.Context) error {
	since := f.accepted.Load()
	waiting, all, err := f.outbox.Waiting(ctx)
	if err != nil {
		return err
	}
	n, err := f.reader.Pending(ctx)
	if err != nil {
		return err
	}
	f.pending.Store(max(0, n-waiting))
	f.backlog.Store(all)
	f.accepted.Add(-since) // those are in n now (or finished)
	return nil
}

// admit refuses a new saga when the outbox is full or the limiter says
// too many are in flight.
func (s *Orders) admit(ctx context.Context) error {
	if s.limiter == nil {
		return nil
	}
	reason := ""
	err := s.limiter.Admit(s.inflight.Count())
	switch {
	case s.inflight.Full():
		reason, err = "outbox_backlog", ErrOverloaded
	case errors.Is(err, admission.ErrOverloaded):
		reason = "saga_limit"
	}
	if reason != "" {
		s.shed.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
	}
	return err
}
