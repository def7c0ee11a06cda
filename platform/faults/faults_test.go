package faults_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/observe"
)

func TestFaultsApplyToBusinessRoutesOnly(t *testing.T) {
	var inj faults.Injector
	s, err := httpserver.New(observe.Discard(), httpserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s.Echo.Use(inj.Middleware)
	s.Echo.GET("/things", func(c echo.Context) error { return c.NoContent(204) })
	inj.Routes(s.Echo.Group("/admin", httpserver.RequireToken("tok")))
	do := func(method, path, body string, auth bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "Bearer tok")
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("PUT", "/admin/faults", `{"latency_ms":0,"error_rate":1}`, false); rec.Code != 401 {
		t.Fatalf("without token: %d", rec.Code)
	}
	for _, bad := range []string{`{"error_rate":1.5}`, `{"latency_ms":-1}`, `{"latency":5}`} {
		if rec := do("PUT", "/admin/faults", bad, true); rec.Code != 400 {
			t.Fatalf("%s: %d", bad, rec.Code)
		}
	}
	if rec := do("PUT", "/admin/faults", `{"latency_ms":0,"error_rate":1}`, true); rec.Code != 200 {
		t.Fatalf("set: %d %s", rec.Code, rec.Body)
	}
	if rec := do("GET", "/things", "", false); rec.Code != 500 || !strings.Contains(rec.Body.String(), "injected_fault") {
		t.Fatalf("business route with error_rate 1: %d %s", rec.Code, rec.Body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if rec := do("GET", p, "", false); rec.Code != 200 {
			t.Fatalf("%s affected: %d", p, rec.Code)
		}
	}
	do("PUT", "/admin/faults", `{"latency_ms":80,"error_rate":0}`, true)
	start := time.Now()
	if rec := do("GET", "/things", "", false); rec.Code != http.StatusNoContent || time.Since(start) < 80*time.Millisecond {
		t.Fatalf("latency: %d after %v", rec.Code, time.Since(start))
	}
	if rec := do("GET", "/admin/faults", "", true); !strings.Contains(rec.Body.String(), `"latency_ms":80`) {
		t.Fatalf("get: %s", rec.Body)
	}
}
