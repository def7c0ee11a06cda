package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestTelemetryEnvPointsAtBackendsThatAnswer(t *testing.T) {
	up := map[string]bool{"http://127.0.0.1:4318/": true}
	probe := func(_ context.Context, url string) bool { return up[url] }
	none := func(string) (string, bool) { return "", false }

	got := telemetryEnv(context.Background(), none, probe, io.Discard)
	if !slices.Equal(got, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318"}) {
		t.Errorf("collector up, Pyroscope down: got %v", got)
	}
	up["http://127.0.0.1:4040/ready"] = true
	if got := telemetryEnv(context.Background(), none, probe, io.Discard); len(got) != 2 {
		t.Errorf("both up: got %v", got)
	}
	// The developer's own setting wins, even when a backend answers here.
	mine := func(k string) (string, bool) {
		if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			return "http://elsewhere:4318", true
		}
		return "", false
	}
	if got := telemetryEnv(context.Background(), mine, probe, io.Discard); !slices.Equal(got, []string{"PYROSCOPE_SERVER_ADDRESS=http://127.0.0.1:4040"}) {
		t.Errorf("with OTEL_EXPORTER_OTLP_ENDPOINT set: got %v", got)
	}
	if got := telemetryEnv(context.Background(), none, func(context.Context, string) bool { return false }, io.Discard); len(got) != 0 {
		t.Errorf("nothing up: got %v", got)
	}
}

func TestAnswersIsAnyHTTPAnswer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler()) // the Collector's receiver on /
	defer srv.Close()
	if !answers(context.Background(), srv.URL+"/") {
		t.Error("a 404 is an answer")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	if answers(context.Background(), "http://"+addr+"/") {
		t.Error("a closed port answered")
	}
}
