package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The observability backends of deploy/compose/observability.yaml, as
// published on this machine: the Collector's OTLP/HTTP receiver and
// Pyroscope.
var backends = []struct{ env, value, probe string }{
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "http://127.0.0.1:4318/"},
	{"PYROSCOPE_SERVER_ADDRESS", "http://127.0.0.1:4040", "http://127.0.0.1:4040/ready"},
}

// telemetryEnv points the processes' exporters at the observability
// backends running on this machine, so that `make dev` shows up in the
// same Grafana as the compose stack without any setting. A variable the
// developer set wins; a backend that does not answer is left out (the
// services then export nothing, as before).
func telemetryEnv(ctx context.Context, lookup func(string) (string, bool), answers func(context.Context, string) bool, out io.Writer) []string {
	var env, used []string
	for _, b := range backends {
		if v, set := lookup(b.env); set {
			used = append(used, b.env+"="+v+" (yours)")
			continue
		}
		if answers(ctx, b.probe) {
			env = append(env, b.env+"="+b.value)
			used = append(used, b.env+"="+b.value)
		}
	}
	if len(used) > 0 {
		fmt.Fprintf(out, "devrun: telemetry to %s\n", strings.Join(used, ", "))
	}
	return env
}

// answers reports whether an HTTP server answers url within a second,
// whatever its status (the Collector's receiver answers 404 on /).
func answers(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return true
}
