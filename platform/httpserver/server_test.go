package httpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/observe/observetest"
	"github.com/example/sagasuite/platform/telemetry"
)

type body struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

func do(t *testing.T, h http.Handler, method, path, ctype, payload string, header ...string) (*httptest.ResponseRecorder, body) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(payload))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var b body
	_ = json.Unmarshal(rec.Body.Bytes(), &b)
	return rec, b
}

// server is httpserver.New for a test that needs it to succeed.
func server(t testing.TB, tel observe.Bundle, cfg httpserver.Config) *httpserver.Server {
	t.Helper()
	s, err := httpserver.New(tel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(t testing.TB, tel observe.Bundle, cfg httpserver.Config) *httpserver.Server {
	s := server(t, tel, cfg)
	type in struct {
		Name string `json:"name"`
	}
	s.Echo.POST("/things", func(c echo.Context) error {
		var v in
		if err := httpserver.Bind(c, &v); err != nil {
			return err
		}
		if v.Name == "" {
			return httpserver.Invalid(map[string]string{"name": "required"})
		}
		return c.JSON(http.StatusCreated, v)
	})
	s.Echo.GET("/boom", func(c echo.Context) error { return errors.New("secret internal detail") })
	s.Echo.GET("/panic", func(c echo.Context) error { panic("oops") })
	s.Echo.PUT("/admin/x", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, httpserver.RequireToken("tok"))
	return s
}

func TestErrorsFollowTheContract(t *testing.T) {
	s := newServer(t, observe.Discard(), httpserver.Config{})
	tests := []struct {
		name, method, path, ctype, payload string
		header                             []string
		status                             int
		code                               string
	}{
		{"ok", "POST", "/things", "application/json", `{"name":"a"}`, nil, 201, ""},
		{"validation", "POST", "/things", "application/json", `{"name":""}`, nil, 400, "validation_failed"},
		{"syntax", "POST", "/things", "application/json", `{"name":`, nil, 400, "invalid_json"},
		{"unknown field", "POST", "/things", "application/json", `{"name":"a","x":1}`, nil, 400, "invalid_json"},
		{"trailing data", "POST", "/things", "application/json", `{"name":"a"} {}`, nil, 400, "invalid_json"},
		{"empty", "POST", "/things", "application/json", ``, nil, 400, "invalid_json"},
		{"media type", "POST", "/things", "text/csv", `a,b`, nil, 415, "unsupported_media_type"},
		{"too large", "POST", "/things", "application/json", `{"name":"` + strings.Repeat("a", 70<<10) + `"}`, nil, 413, "payload_too_large"},
		{"unknown route", "GET", "/nowhere", "", ``, nil, 404, "not_found"},
		{"wrong method", "DELETE", "/things", "", ``, nil, 405, "method_not_allowed"},
		{"internal error", "GET", "/boom", "", ``, nil, 500, "internal"},
		{"panic", "GET", "/panic", "", ``, nil, 500, "internal"},
		{"no token", "PUT", "/admin/x", "", ``, nil, 401, "unauthorized"},
		{"wrong token", "PUT", "/admin/x", "", ``, []string{"Authorization", "Bearer nope"}, 401, "unauthorized"},
		{"token", "PUT", "/admin/x", "", ``, []string{"Authorization", "Bearer tok"}, 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, b := do(t, s, tt.method, tt.path, tt.ctype, tt.payload, tt.header...)
			if rec.Code != tt.status || b.Error.Code != tt.code {
				t.Fatalf("%d %s, want %d %q", rec.Code, rec.Body, tt.status, tt.code)
			}
			if tt.code != "" && (b.Error.Message == "" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json")) {
				t.Fatalf("error without message or JSON type: %s", rec.Body)
			}
			if strings.Contains(rec.Body.String(), "secret internal detail") {
				t.Fatal("an internal error leaked to the client")
			}
		})
	}
}

func TestBodyLimitWithoutContentLength(t *testing.T) {
	s := newServer(t, observe.Discard(), httpserver.Config{BodyLimit: 100})
	req := httptest.NewRequest("POST", "/things", strings.NewReader(`{"name":"`+strings.Repeat("a", 200)+`"}`))
	req.ContentLength = -1 // chunked: only the reader's limit can catch it
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var dbErr error
	kafkaErr := errors.New("no broker yet")
	s := server(t, observe.Discard(), httpserver.Config{Ready: httpserver.Readiness{
		Required: map[string]httpserver.Check{"postgres": func(context.Context) error { return dbErr }},
		Startup:  map[string]httpserver.Check{"kafka": func(context.Context) error { return kafkaErr }},
	}, Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("m 1\n")) })})
	if rec, _ := do(t, s, "GET", "/healthz", "", ""); rec.Code != 200 {
		t.Fatalf("healthz %d", rec.Code)
	}
	// A startup check must pass once: not ready before.
	if rec, b := do(t, s, "GET", "/readyz", "", ""); rec.Code != 503 || b.Error.Message != "kafka is not available yet" {
		t.Fatalf("readyz before Kafka ever answered: %d %s", rec.Code, rec.Body)
	}
	kafkaErr = nil
	if rec, _ := do(t, s, "GET", "/readyz", "", ""); rec.Code != 200 {
		t.Fatalf("readyz %d", rec.Code)
	}
	// After that, Kafka going away is reported, and the API stays in
	// rotation: a blip must not take it down.
	kafkaErr = errors.New("broker gone")
	if rec, _ := do(t, s, "GET", "/readyz", "", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"degraded":{"kafka":"unavailable"}`) {
		t.Fatalf("readyz with Kafka away after start: %d %s, want 200 degraded", rec.Code, rec.Body)
	}
	// The public answer names the dependency, never its error (users,
	// database names, addresses).
	dbErr = errors.New(`failed to connect to user=app database=orders: dial tcp 10.0.3.7:5432: connection refused`)
	rec, b := do(t, s, "GET", "/readyz", "", "")
	if rec.Code != 503 || b.Error.Code != "not_ready" || b.Error.Message != "postgres is not available" ||
		strings.Contains(rec.Body.String(), "10.0.3.7") || strings.Contains(rec.Body.String(), "user=app") {
		t.Fatalf("readyz with a dead database: %d %s", rec.Code, rec.Body)
	}
	if rec, _ := do(t, s, "GET", "/metrics", "", ""); rec.Code != 200 || rec.Body.String() != "m 1\n" {
		t.Fatalf("metrics %d %q", rec.Code, rec.Body)
	}
}

func TestServerSpansAreNamedByRoute(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	s := server(t, observetest.With(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), nil), httpserver.Config{})
	s.Echo.GET("/orders/:id", func(c echo.Context) error { return c.NoContent(200) })
	do(t, s, "GET", "/orders/123", "", "")
	do(t, s, "GET", "/healthz", "", "")
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "GET /orders/:id" {
		var names []string
		for _, sp := range spans {
			names = append(names, sp.Name())
		}
		t.Fatalf("spans %v, want only GET /orders/:id (health probes are not traced)", names)
	}
}

func TestRunShutsDownGracefully(t *testing.T) {
	s := server(t, observe.Discard(), httpserver.Config{})
	started := make(chan struct{})
	s.Echo.GET("/slow", func(c echo.Context) error {
		close(started)
		time.Sleep(200 * time.Millisecond)
		return c.String(200, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b := make([]byte, 4)
		_, _ = resp.Body.Read(b)
		got <- string(b)
	}()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if r := <-got; r != "done" {
		t.Fatalf("request in flight got %q: shutdown must let it finish", r)
	}
}

// A client cannot mint metric series: server.address is the configured
// name and server.port is dropped (telemetry's view), whatever Host header
// a request carries.
func TestHostHeaderMintsNoSeries(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithView(telemetry.BoundedHTTPServerView))
	s := newServer(t, observetest.With(nil, mp), httpserver.Config{ServerName: "orders"})
	for _, host := range []string{"orders:8081", "evil-1.example", "evil-2.example:9999"} {
		req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader(`{"name":"x"}`))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		s.ServeHTTP(httptest.NewRecorder(), req)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var points int
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok || m.Name != "http.server.request.duration" {
				continue
			}
			for _, dp := range h.DataPoints {
				points++
				if v, ok := dp.Attributes.Value("server.address"); !ok || v.AsString() != "orders" {
					t.Errorf("server.address = %q, want the configured name", v.AsString())
				}
				if _, ok := dp.Attributes.Value("server.port"); ok {
					t.Error("server.port comes from the Host header too")
				}
			}
		}
	}
	if points != 1 {
		t.Errorf("three Host headers made %d series, want 1", points)
	}
}

func TestText(t *testing.T) {
	for s, want := range map[string]bool{
		"SKU-0001": true, "c-42": true, "Größe 42": true, "": false, "\x00": false, "a\x00b": false,
		"\xff\xfe": false, "line\nbreak": false, "tab\t": false, "\u200bzero-width": true,
		"12345678901234567890123456789012345678901234567890123456789012345": false, // 65 characters
	} {
		if got := httpserver.Text(s, 64); got != want {
			t.Errorf("Text(%q) = %v, want %v", s, got, want)
		}
	}
}
