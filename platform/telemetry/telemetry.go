package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"

	otelpyroscope "github.com/grafana/otel-profiling-go"
	"github.com/grafana/pyroscope-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/example/sagasuite/platform/observe"
)

// Config names the process. ServiceName is required; the rest may be empty.
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override what is set here.
type Config struct {
	ServiceName    string
	ServiceVersion string
	InstanceID     string
	// LogLevel is the minimum level logged; the zero value is Info.
	LogLevel slog.Level
}

// Telemetry holds what a service wires into its components: the Bundle
// every component takes, and the handler serving its metrics. Shutdown
// flushes every signal.
type Telemetry struct {
	observe.Bundle
	// MetricsHandler serves every metric in Prometheus/OpenMetrics format.
	MetricsHandler http.Handler

	shutdown []func(context.Context) error
}

// Setup builds the providers. getenv is the process environment (os.Getenv
// in main); the OTLP exporter itself also reads the OTEL_EXPORTER_OTLP_*
// variables from the process environment, as the SDK specifies.
func Setup(ctx context.Context, cfg Config, getenv func(string) string, stdout io.Writer) (*Telemetry, error) {
	if cfg.ServiceName == "" {
		return nil, errors.New("telemetry: service name is required")
	}
	if name := getenv("OTEL_SERVICE_NAME"); name != "" {
		cfg.ServiceName = name
	}
	t := &Telemetry{}
	t.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(cfg.ServiceName),
		semconv.ServiceVersion(cfg.ServiceVersion),
		semconv.ServiceInstanceID(cfg.InstanceID),
	))
	if err == nil {
		// Environment last, so OTEL_RESOURCE_ATTRIBUTES wins.
		var envRes *resource.Resource
		envRes, err = resource.New(ctx, resource.WithFromEnv())
		if err == nil {
			res, err = resource.Merge(res, envRes)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}

	var handler slog.Handler = NewLogHandler(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	lp, err := newLoggerProvider(ctx, res, getenv)
	if err != nil {
		return nil, err
	}
	if lp != nil {
		// Every line also goes out over OTLP, carrying its trace and span
		// ids as fields of the record, so a trace's logs can be found.
		t.shutdown = append(t.shutdown, lp.Shutdown)
		handler = slog.NewMultiHandler(handler, levelHandler{min: cfg.LogLevel,
			Handler: otelslog.NewHandler("github.com/example/sagasuite/platform/telemetry", otelslog.WithLoggerProvider(lp))})
	}
	t.Logger = slog.New(handler).With("service", cfg.ServiceName, "instance", cfg.InstanceID)

	tp, err := newTracerProvider(ctx, res, getenv)
	if err != nil {
		return nil, err
	}
	t.shutdown = append(t.shutdown, tp.Shutdown)
	t.TracerProvider = tp

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(exporter), sdkmetric.WithView(BoundedHTTPServerView))
	t.shutdown = append(t.shutdown, mp.Shutdown)
	t.MeterProvider = mp
	// OpenMetrics is the only exposition format that carries exemplars.
	t.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})

	if addr := getenv("PYROSCOPE_SERVER_ADDRESS"); addr != "" {
		stop, err := startProfiler(addr, cfg, getenv)
		if err != nil {
			return nil, err
		}
		t.shutdown = append(t.shutdown, stop)
		// Labels CPU samples with the span that ran, linking traces to flame graphs.
		t.TracerProvider = otelpyroscope.NewTracerProvider(tp)
	}
	return t, nil
}

// BoundedHTTPServerView drops server.port from the HTTP server's metrics.
// otelhttp takes it from the request's Host header, so any client could
// mint new series; server.address is pinned by httpserver
// (otelhttp.WithServerName).
var BoundedHTTPServerView = sdkmetric.NewView(
	sdkmetric.Instrument{Name: "http.server.*"},
	sdkmetric.Stream{AttributeFilter: attribute.NewDenyKeysFilter("server.port")},
)

// Shutdown flushes spans, metrics and profiles, in that order, and reports
// every failure. Bound ctx: exporters without a collector wait for their
// own timeouts.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// otlpSignal reads the standard variables for one signal ("TRACES",
// "LOGS"): whether to export it over OTLP (an endpoint is set, or
// OTEL_<SIGNAL>_EXPORTER=otlp; none turns it off) and over which protocol.
func otlpSignal(getenv func(string) string, signal string) (protocol string, on bool, err error) {
	exporter := strings.TrimSpace(getenv("OTEL_" + signal + "_EXPORTER"))
	endpoint := getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	switch {
	case exporter != "" && exporter != "otlp" && exporter != "none":
		return "", false, fmt.Errorf("OTEL_%s_EXPORTER=%q: only otlp and none are supported", signal, exporter)
	case exporter == "none" || (endpoint == "" && exporter == ""):
		return "", false, nil
	}
	protocol = getenv("OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol != "" && protocol != "http/protobuf" && protocol != "grpc" {
		return "", false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want http/protobuf or grpc", protocol)
	}
	return protocol, true, nil
}

// newLoggerProvider exports logs over OTLP when an endpoint is set (the
// same variables as traces: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_LOGS_EXPORTER=none to turn it off);
// nil when there is nowhere to send them.
func newLoggerProvider(ctx context.Context, res *resource.Resource, getenv func(string) string) (*sdklog.LoggerProvider, error) {
	protocol, on, err := otlpSignal(getenv, "LOGS")
	if err != nil || !on {
		return nil, err
	}
	var exp sdklog.Exporter
	if protocol == "grpc" {
		exp, err = otlploggrpc.New(ctx)
	} else {
		exp, err = otlploghttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp log exporter: %w", err)
	}
	return sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp))), nil
}

// levelHandler drops records below min (the OTLP bridge logs every level).
type levelHandler struct {
	slog.Handler
	min slog.Level
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelHandler{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{Handler: h.Handler.WithGroup(name), min: h.min}
}

func newTracerProvider(ctx context.Context, res *resource.Resource, getenv func(string) string) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)} // sampler: OTEL_TRACES_SAMPLER, read by the SDK
	protocol, on, err := otlpSignal(getenv, "TRACES")
	if err != nil {
		return nil, err
	}
	if !on {
		return sdktrace.NewTracerProvider(opts...), nil // spans still flow in-process (ids in logs, span profiles)
	}
	var exp sdktrace.SpanExporter
	if protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	// The batch processor reads OTEL_BSP_* itself.
	return sdktrace.NewTracerProvider(append(opts, sdktrace.WithBatcher(exp))...), nil
}

func startProfiler(addr string, cfg Config, getenv func(string) string) (func(context.Context) error, error) {
	// Sampled, not exhaustive: one mutex contention event in 100, and
	// about one blocking event per 10 µs spent blocked. Pyroscope's example
	// rates (5 and 5 ns) record nearly every event, which costs a busy
	// service several percent of its CPU.
	runtime.SetMutexProfileFraction(100)
	runtime.SetBlockProfileRate(int((10 * time.Microsecond).Nanoseconds()))
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName:   cfg.ServiceName,
		ServerAddress:     addr,
		BasicAuthUser:     getenv("PYROSCOPE_BASIC_AUTH_USER"),
		BasicAuthPassword: getenv("PYROSCOPE_BASIC_AUTH_PASSWORD"),
		Tags: map[string]string{
			"service_name": cfg.ServiceName,
			"version":      cfg.ServiceVersion,
			"instance":     cfg.InstanceID,
		},
		// pyroscope-go forces a full GC before each heap profile (every
		// upload, 15 s) unless told not to: on a busy service that is a
		// stop-the-world and a burst of mark work in every process at
		// once, which showed as saga p99. The heap profile still reflects
		// the last GC the runtime ran by itself.
		DisableGCRuns: true,
		// Each upload cuts and compresses every profile: a CPU burst. With
		// one rate for all, the processes of a host, started together,
		// burst together; a rate drawn from 12-18 s spreads them out.
		UploadRate: 12*time.Second + rand.N(6*time.Second), // #nosec G404 -- spreading uploads needs no unpredictability
		ProfileTypes: []pyroscope.ProfileType{
			pyroscope.ProfileCPU,
			pyroscope.ProfileAllocObjects, pyroscope.ProfileAllocSpace,
			pyroscope.ProfileInuseObjects, pyroscope.ProfileInuseSpace,
			pyroscope.ProfileGoroutines,
			pyroscope.ProfileMutexCount, pyroscope.ProfileMutexDuration,
			pyroscope.ProfileBlockCount, pyroscope.ProfileBlockDuration,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("start profiler: %w", err)
	}
	return func(context.Context) error { return p.Stop() }, nil
}

// Transport wraps base (nil: http.DefaultTransport) so that every request
// is a client span, propagates the trace context and is measured, with
// this process's providers rather than the OTel globals.
func (t *Telemetry) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base, otelhttp.WithTracerProvider(t.TracerProvider),
		otelhttp.WithMeterProvider(t.MeterProvider), otelhttp.WithPropagators(t.Propagator))
}
