package kafka

import (
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const scope = "github.com/example/sagasuite/platform/kafka"

// Observers are where the package reports. Nil fields fall back to the
// OTel globals and slog.Default.
type Observers struct {
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
}

type observers struct {
	log        *slog.Logger
	tracer     trace.Tracer
	meter      metric.Meter
	propagator propagation.TextMapPropagator
}

func (o Observers) build() observers {
	b := observers{log: o.Logger, propagator: o.Propagator}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.propagator == nil {
		b.propagator = propagation.TraceContext{}
	}
	tp, mp := o.TracerProvider, o.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	b.tracer, b.meter = tp.Tracer(scope), mp.Meter(scope)
	return b
}
