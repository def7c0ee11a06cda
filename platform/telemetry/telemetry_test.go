package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/google/pprof/profile"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/telemetry"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLogsCarryTraceIDs(t *testing.T) {
	var out bytes.Buffer
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "svc", InstanceID: "i-1"}, env(nil), &out)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	ctx, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "work")
	tel.Logger.InfoContext(ctx, "inside")
	span.End()
	tel.Logger.Info("outside")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log lines %q", lines)
	}
	var in, outside map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &in)
	_ = json.Unmarshal([]byte(lines[1]), &outside)
	if in["trace_id"] != span.SpanContext().TraceID().String() || in["span_id"] != span.SpanContext().SpanID().String() || in["service"] != "svc" {
		t.Fatalf("line inside a span: %v", in)
	}
	if _, ok := outside["trace_id"]; ok {
		t.Fatalf("line outside a span has a trace id: %v", outside)
	}
}

func TestMetricsAreServedAsOpenMetrics(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "svc"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	c, _ := tel.MeterProvider.Meter("t").Int64Counter("things.done")
	c.Add(context.Background(), 3)
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	tel.MetricsHandler.ServeHTTP(rec, req)
	body := rec.Body.String()
	if !strings.Contains(rec.Header().Get("Content-Type"), "openmetrics") || !strings.Contains(body, "things_done_total") ||
		!strings.Contains(body, `service_name="svc"`) || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("content type %q, body:\n%s", rec.Header().Get("Content-Type"), body)
	}
}

func TestBadExporterSettingsAreErrors(t *testing.T) {
	for _, e := range []map[string]string{
		{"OTEL_TRACES_EXPORTER": "zipkin"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
	} {
		if _, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "svc"}, env(e), io.Discard); err == nil {
			t.Errorf("%v accepted", e)
		}
	}
	if _, err := telemetry.Setup(context.Background(), telemetry.Config{}, env(nil), io.Discard); err == nil {
		t.Error("no service name accepted")
	}
}

// The profiler pushes to PYROSCOPE_SERVER_ADDRESS with the service's tags.
func TestProfilesArePushedWithTags(t *testing.T) {
	var mu sync.Mutex
	var names []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		names = append(names, r.URL.Query().Get("name"))
		mu.Unlock()
	}))
	defer srv.Close()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "svc", ServiceVersion: "1.2.3", InstanceID: "i-9"},
		env(map[string]string{"PYROSCOPE_SERVER_ADDRESS": srv.URL}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) { // burn a little CPU for the profile
		_ = strings.Repeat("x", 1000)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil { // flushes the profiler
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(names) == 0 {
		t.Fatal("no profile pushed")
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "svc{") || !strings.Contains(n, "instance=i-9") || !strings.Contains(n, "version=1.2.3") || !strings.Contains(n, "service_name=svc") {
			t.Fatalf("profile name %q, want svc{instance=i-9,…,service_name=svc,version=1.2.3}", n)
		}
	}
	t.Logf("%d profiles, e.g. %s", len(names), names[0])
}

// Span profiles: CPU samples taken while a span runs carry its span_id,
// so a trace's span opens its flame graph. A fake ingest server parses
// the pprof the profiler pushes.
func TestCPUProfilesCarryTheRunningSpansID(t *testing.T) {
	var mu sync.Mutex
	spanIDs := map[string]int64{} // span_id label → CPU samples
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			return
		}
		f, _, err := r.FormFile("profile")
		if err != nil {
			return
		}
		defer f.Close()
		p, err := profile.Parse(f) // gzipped pprof
		if err != nil || len(p.SampleType) == 0 || p.SampleType[0].Type != "samples" && p.SampleType[0].Type != "cpu" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, s := range p.Sample {
			for _, id := range s.Label["span_id"] {
				spanIDs[id] += s.Value[0]
			}
		}
	}))
	defer srv.Close()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "svc"},
		env(map[string]string{"PYROSCOPE_SERVER_ADDRESS": srv.URL}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "busy work")
	deadline := time.Now().Add(2 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ { // CPU burned in the span's goroutine
		_ = strings.Repeat("x", 1000+n%7)
	}
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil { // flushes the profiler
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := span.SpanContext().SpanID().String()
	if spanIDs[want] == 0 {
		t.Fatalf("no CPU sample labelled span_id=%s (labels seen: %v)", want, spanIDs)
	}
	t.Logf("%d CPU samples carry span_id %s", spanIDs[want], want)
}
