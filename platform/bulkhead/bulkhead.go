// Package bulkhead bounds how many calls of one kind run at once, like the
// watertight compartments of a ship: when one kind of work floods (slow
// charges), it cannot take every goroutine, connection and deadline the
// process has, and other work (refunds, reads) still gets through. Calls
// beyond the bound wait in a short queue, or are refused at once with
// ErrFull: failing fast is the point.
//
// To drop it from a call site, call the function directly.
package bulkhead

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/observe"
)

// ErrFull means the bulkhead's slots and queue are all taken.
var ErrFull = errors.New("bulkhead full")

// Settings configure a Bulkhead. Name is required.
type Settings struct {
	Name string // the pool, e.g. "psp.charge"; labels metrics
	// MaxConcurrent calls run at once; 0 means 10.
	MaxConcurrent int
	// MaxQueue calls may wait for a slot; 0 means none wait.
	MaxQueue int
	// MaxWait bounds a queued call's wait; 0 means 1 s.
	MaxWait time.Duration
}

// Bulkhead is a bounded pool of call slots. It is safe for concurrent use.
type Bulkhead struct {
	name     string
	slots    chan struct{}
	queue    chan struct{}
	maxWait  time.Duration
	inflight metric.Int64UpDownCounter
	queued   metric.Int64UpDownCounter
	rejected metric.Int64Counter
	attrs    metric.MeasurementOption
}

// New returns an empty bulkhead reporting through tel.
func New(tel observe.Bundle, s Settings) (*Bulkhead, error) {
	if s.Name == "" {
		return nil, errors.New("bulkhead: name is required")
	}
	if err := tel.For("bulkhead " + s.Name); err != nil {
		return nil, err
	}
	if s.MaxConcurrent <= 0 {
		s.MaxConcurrent = 10
	}
	if s.MaxWait <= 0 {
		s.MaxWait = time.Second
	}
	meter := tel.Meter("github.com/example/sagasuite/platform/bulkhead")
	b := &Bulkhead{name: s.Name, slots: make(chan struct{}, s.MaxConcurrent), queue: make(chan struct{}, s.MaxQueue), maxWait: s.MaxWait,
		attrs: metric.WithAttributeSet(attribute.NewSet(attribute.String("bulkhead", s.Name)))}
	var err error
	if b.inflight, err = meter.Int64UpDownCounter("bulkhead.inflight", metric.WithDescription("Calls running in the pool."), metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	if b.queued, err = meter.Int64UpDownCounter("bulkhead.queued", metric.WithDescription("Calls waiting for a slot."), metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	if b.rejected, err = meter.Int64Counter("bulkhead.rejected", metric.WithDescription("Calls refused because the pool and its queue were full."), metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	// Every series exists from the start, at zero: dashboards and alerts
	// see "nothing queued, nothing rejected" rather than no data.
	b.inflight.Add(context.Background(), 0, b.attrs)
	b.queued.Add(context.Background(), 0, b.attrs)
	b.rejected.Add(context.Background(), 0, b.attrs)
	return b, nil
}

// Do runs fn in a slot, waiting in the queue if there is room, else
// returns ErrFull without running it.
func (b *Bulkhead) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	select {
	case b.slots <- struct{}{}:
	default:
		if err := b.wait(ctx); err != nil {
			return err
		}
	}
	b.inflight.Add(ctx, 1, b.attrs)
	defer func() {
		<-b.slots
		b.inflight.Add(ctx, -1, b.attrs)
	}()
	return fn(ctx)
}

func (b *Bulkhead) wait(ctx context.Context) error {
	select {
	case b.queue <- struct{}{}:
	default:
		b.rejected.Add(ctx, 1, b.attrs)
		return fmt.Errorf("%s: %w", b.name, ErrFull)
	}
	b.queued.Add(ctx, 1, b.attrs)
	defer func() {
		<-b.queue
		b.queued.Add(ctx, -1, b.attrs)
	}()
	t := time.NewTimer(b.maxWait)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-t.C:
		b.rejected.Add(ctx, 1, b.attrs)
		return fmt.Errorf("%s: waited %v: %w", b.name, b.maxWait, ErrFull)
	case <-ctx.Done():
		return ctx.Err()
	}
}
