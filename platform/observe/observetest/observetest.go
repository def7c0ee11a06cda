// Package observetest builds telemetry bundles for tests that look at what
// a component reported.
package observetest

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/observe"
)

// With is observe.Discard with the given providers: a test passes the SDK
// provider whose spans or metrics it reads, nil for the other.
func With(tp trace.TracerProvider, mp metric.MeterProvider) observe.Bundle {
	tel := observe.Discard()
	if tp != nil {
		tel.TracerProvider = tp
	}
	if mp != nil {
		tel.MeterProvider = mp
	}
	return tel
}
