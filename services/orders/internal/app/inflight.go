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
)

// Limiter decides whether a new saga may start (platform/admission).
type Limiter interface {
	Admit(inflight int64) error
}

// ErrOverloaded means the order was refused at the door: more sagas are
// in flight than the suite can finish within the saga objective.
var ErrOverloaded = admission.ErrOverloaded

// InFlight counts sagas in flight: orders PENDING in the read model,
// shared by every replica, read every refresh, plus what this replica
// accepted since the last read. Counting from the store, not from a
// counter in memory, keeps the figure right across restarts and replicas.
type InFlight struct {
	reader   Reader
	pending  atomic.Int64 // at the last read
	accepted atomic.Int64 // since the last read
}

// NewInFlight returns a counter over reader's PENDING orders; meter gets
// the saga.in_flight gauge.
func NewInFlight(reader Reader, meter metric.Meter) (*InFlight, error) {
	f := &InFlight{reader: reader}
	g, err := meter.Int64ObservableGauge("saga.in_flight", metric.WithDescription("Orders accepted and not yet in a terminal status."),
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

// Run refreshes the count every interval until ctx ends.
func (f *InFlight) Run(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		since := f.accepted.Load()
		n, err := f.reader.Pending(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.WarnContext(ctx, "count sagas in flight", "error", err)
		default:
			f.pending.Store(n)
			f.accepted.Add(-since) // those are in n now (or finished)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// admit refuses a new saga when the limiter says too many are in flight.
func (s *Orders) admit(ctx context.Context) error {
	if s.limiter == nil {
		return nil
	}
	if err := s.limiter.Admit(s.inflight.Count()); err != nil {
		if errors.Is(err, admission.ErrOverloaded) {
			s.shed.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", "saga_limit")))
		}
		return err
	}
	return nil
}
