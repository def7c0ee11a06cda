// Package observe is the telemetry bundle every platform component and
// every service component takes: the logger, tracer provider, meter
// provider and propagator of its process, passed as one value.
//
// A component refuses to start with a bundle that lacks any of them
// (Check). In an observability-first suite a component that silently
// reported nowhere, because a provider was forgotten in the wiring, would
// be a defect found only when a dashboard stayed empty. A caller that
// really wants no telemetry (a test, a command-line tool) says so with
// Discard.
//
// To remove it from a service: pass the four values to each component
// instead; nothing else depends on this package.
package observe

import (
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Bundle is where a component reports. Every field is required.
type Bundle struct {
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Propagator carries W3C trace context and baggage across HTTP and Kafka.
	Propagator propagation.TextMapPropagator
}

// ErrIncomplete is returned by Check for a bundle that lacks a provider.
var ErrIncomplete = errors.New("telemetry bundle incomplete")

// Check reports every missing field at once.
func (b Bundle) Check() error {
	var missing []string
	if b.Logger == nil {
		missing = append(missing, "Logger")
	}
	if b.TracerProvider == nil {
		missing = append(missing, "TracerProvider")
	}
	if b.MeterProvider == nil {
		missing = append(missing, "MeterProvider")
	}
	if b.Propagator == nil {
		missing = append(missing, "Propagator")
	}
	if missing != nil {
		return fmt.Errorf("%w: no %v", ErrIncomplete, missing)
	}
	return nil
}

// For checks the bundle for the component named, so a constructor's
// first line can be `if err := tel.For("breaker inventory"); err != nil`.
func (b Bundle) For(component string) error {
	if err := b.Check(); err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	return nil
}

// Tracer is the bundle's tracer for an instrumentation scope.
func (b Bundle) Tracer(scope string) trace.Tracer { return b.TracerProvider.Tracer(scope) }

// Meter is the bundle's meter for an instrumentation scope.
func (b Bundle) Meter(scope string) metric.Meter { return b.MeterProvider.Meter(scope) }

// Discard is a complete bundle that reports nowhere: for tests and tools
// that choose not to report. A process wires telemetry.Setup's bundle.
func Discard() Bundle {
	return Bundle{
		Logger:         slog.New(slog.DiscardHandler),
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
}
