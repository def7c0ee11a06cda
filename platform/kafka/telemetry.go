package kafka

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/observe"
)

const scope = "github.com/example/sagasuite/platform/kafka"

type observers struct {
	log        *slog.Logger
	tracer     trace.Tracer
	meter      metric.Meter
	propagator propagation.TextMapPropagator
}

func build(tel observe.Bundle) observers {
	return observers{log: tel.Logger, propagator: tel.Propagator, tracer: tel.Tracer(scope), meter: tel.Meter(scope)}
}
