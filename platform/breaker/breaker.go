// Package breaker stops calling a dependency that keeps failing, so a dead
// or drowning service gets time to recover and callers fail fast instead
// of piling up behind timeouts. It wraps sony/gobreaker (chosen for its
// small, settled API: consecutive-failure trips, a half-open probe, no
// dependencies) and adds what it lacks: OTel metrics (state per breaker,
// transitions, calls by outcome including rejected-while-open) and span
// events on transitions, and it never counts a caller's own cancellation
// as a failure of the dependency.
//
// To drop it from a call site, call the function directly.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/observe"
)

// ErrOpen is returned without calling the dependency while the breaker is
// open (or half-open with its probe already in flight).
var ErrOpen = errors.New("circuit breaker is open")

// Settings configure a Breaker. Name is required; the zero value of every
// other field is a sensible default.
type Settings struct {
	Name string // the dependency, e.g. "inventory"; labels metrics and spans
	// Failures in a row that open the breaker; 0 means 5.
	Failures uint32
	// OpenFor is how long it stays open before one probe may pass; 0 means 5 s.
	OpenFor time.Duration
	// IsFailure says which errors count against the dependency; nil means
	// every error. Errors after the caller's context ended never count.
	IsFailure func(error) bool
}

// Breaker guards one dependency. It is safe for concurrent use.
type Breaker struct {
	cb        *gobreaker.CircuitBreaker[struct{}]
	name      string
	log       *slog.Logger
	calls     metric.Int64Counter
	outcomes  map[string]metric.MeasurementOption
	transits  metric.Int64Counter
	nameAttrs attribute.Set
}

// notCounted marks errors the breaker must ignore.
type notCounted struct{ err error }

func (e notCounted) Error() string { return e.err.Error() }
func (e notCounted) Unwrap() error { return e.err }

// New returns a closed breaker reporting through tel.
func New(tel observe.Bundle, s Settings) (*Breaker, error) {
	if s.Name == "" {
		return nil, errors.New("breaker: name is required")
	}
	if err := tel.For("breaker " + s.Name); err != nil {
		return nil, err
	}
	if s.Failures == 0 {
		s.Failures = 5
	}
	if s.OpenFor <= 0 {
		s.OpenFor = 5 * time.Second
	}
	meter := tel.Meter("github.com/example/sagasuite/platform/breaker")
	b := &Breaker{name: s.Name, log: tel.Logger, nameAttrs: attribute.NewSet(attribute.String("breaker", s.Name))}
	var err error
	if b.calls, err = meter.Int64Counter("breaker.calls", metric.WithDescription("Calls through a breaker by outcome: success, failure, rejected (open), ignored."),
		metric.WithUnit("{call}")); err != nil {
		return nil, err
	}
	if b.transits, err = meter.Int64Counter("breaker.transitions", metric.WithDescription("Breaker state changes, by from and to."),
		metric.WithUnit("{transition}")); err != nil {
		return nil, err
	}
	b.outcomes = map[string]metric.MeasurementOption{}
	for _, o := range []string{"success", "failure", "rejected", "ignored"} {
		b.outcomes[o] = metric.WithAttributeSet(attribute.NewSet(attribute.String("breaker", s.Name), attribute.String("outcome", o)))
		b.calls.Add(context.Background(), 0, b.outcomes[o])
	}
	// Every possible transition exists from the start, at zero.
	for _, t := range [][2]string{{"closed", "open"}, {"open", "half-open"}, {"half-open", "closed"}, {"half-open", "open"}} {
		b.transits.Add(context.Background(), 0, metric.WithAttributes(attribute.String("breaker", s.Name),
			attribute.String("from", t[0]), attribute.String("to", t[1])))
	}
	state, err := meter.Int64ObservableGauge("breaker.state", metric.WithDescription("Breaker state: 0 closed, 1 half-open, 2 open."))
	if err != nil {
		return nil, err
	}
	isFailure := s.IsFailure
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        s.Name,
		MaxRequests: 1,
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.Failures },
		IsExcluded: func(err error) bool {
			var nc notCounted
			return errors.As(err, &nc)
		},
		IsSuccessful: func(err error) bool { return err == nil || (isFailure != nil && !isFailure(err)) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			b.transits.Add(context.Background(), 1, metric.WithAttributes(attribute.String("breaker", name),
				attribute.String("from", from.String()), attribute.String("to", to.String())))
			b.log.Warn("circuit breaker "+to.String(), "breaker", name, "from", from.String())
		},
	})
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(state, stateValue(b.cb.State()), metric.WithAttributeSet(b.nameAttrs))
		return nil
	}, state)
	return b, err
}

// State is "closed", "half-open" or "open".
func (b *Breaker) State() string { return b.cb.State().String() }

// Do calls fn unless the breaker is open, and counts its outcome.
func (b *Breaker) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	before := b.cb.State()
	_, err := b.cb.Execute(func() (struct{}, error) {
		err := fn(ctx)
		if err != nil && ctx.Err() != nil {
			return struct{}{}, notCounted{err} // the caller gave up: says nothing about the dependency
		}
		return struct{}{}, err
	})
	outcome := "success"
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		outcome, err = "rejected", fmt.Errorf("%s: %w", b.name, ErrOpen)
	case errors.As(err, new(notCounted)):
		outcome, err = "ignored", errors.Unwrap(err)
	case err != nil:
		outcome = "failure"
	}
	b.calls.Add(ctx, 1, b.outcomes[outcome])
	if after := b.cb.State(); after != before {
		trace.SpanFromContext(ctx).AddEvent("circuit breaker "+after.String(), trace.WithAttributes(
			attribute.String("breaker", b.name), attribute.String("from", before.String()), attribute.String("to", after.String())))
	}
	return err
}

func stateValue(s gobreaker.State) int64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}
