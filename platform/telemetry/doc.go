// Package telemetry sets up the three signals and the profiler for one
// service process from the standard OTEL_* and PYROSCOPE_* variables:
//
//   - traces: OTLP (http/protobuf by default, grpc on request) when an
//     OTEL_EXPORTER_OTLP_*ENDPOINT is set, otherwise recorded nowhere;
//   - metrics: an OTel meter provider read by the Prometheus exporter and
//     served on /metrics as OpenMetrics (so exemplars survive);
//   - logs: slog JSON on stdout with trace_id and span_id on every line
//     written with a context that holds a span; also exported over OTLP
//     (the OTel slog bridge) when an OTLP endpoint is set;
//   - profiles: pyroscope-go pushes CPU, memory, mutex, block and goroutine
//     profiles when PYROSCOPE_SERVER_ADDRESS is set, and CPU samples carry
//     the span that was running (grafana/otel-profiling-go).
//
// Nothing in the suite sets the OTel globals: a service's run function
// hands [Telemetry]'s observe.Bundle to every component it assembles, and
// its HTTP clients get [Telemetry.Transport], so no trace depends on
// global state. A component given a bundle without a provider refuses to
// start (observe.Bundle.Check).
//
// To drop a signal, delete its part of [Setup]; to drop the package, pass
// observe.Discard() to the rest of the platform.
package telemetry
