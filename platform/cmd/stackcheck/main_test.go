package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A stack whose backends all hold the run's telemetry passes; one missing
// piece (Loki's lines) fails the run and says which check failed.
func TestRunReportsEachCheck(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	lokiLines := `[{"stream":{"service_name":"orders"},"values":[["1","accepted"]]}]`
	stack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/v1/query" && strings.Contains(r.URL.Query().Get("query"), "traces_service_graph"):
			_, _ = io.WriteString(w, `{"status":"success","data":{"result":[
				{"metric":{"client":"orders","server":"inventory"},"value":[1,"1"]},
				{"metric":{"client":"payments","server":"psp"},"value":[1,"1"]},
				{"metric":{"client":"orders","server":"postgresql"},"value":[1,"1"]},
				{"metric":{"client":"orders","server":"inventory","connection_type":"messaging_system"},"value":[1,"1"]}]}}`)
		case r.URL.Path == "/api/v1/query":
			_, _ = io.WriteString(w, `{"status":"success","data":{"result":[{"metric":{},"value":[1,"42"]}]}}`)
		case r.URL.Path == "/api/v1/query_exemplars":
			_, _ = io.WriteString(w, `{"status":"success","data":[{"exemplars":[{"labels":{"trace_id":"`+id+`"},"value":"0.2","timestamp":1}]}]}`)
		case r.URL.Path == "/api/v2/traces/"+id:
			var rs []string
			for _, s := range []string{"orders", "inventory", "payments", "psp"} {
				rs = append(rs, `{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"`+s+`"}}]},"scopeSpans":[{"spans":[{}]}]}`)
			}
			_, _ = io.WriteString(w, `{"trace":{"resourceSpans":[`+strings.Join(rs, ",")+`]}}`)
		case r.URL.Path == "/loki/api/v1/query_range":
			_, _ = io.WriteString(w, `{"data":{"result":`+lokiLines+`}}`)
		case r.URL.Path == "/querier.v1.QuerierService/SelectMergeStacktraces":
			_, _ = io.WriteString(w, `{"flamegraph":{"total":"1000"}}`)
		case r.URL.Path == "/api/search":
			_, _ = io.WriteString(w, `[{"uid":"a"},{"uid":"b"}]`)
		case strings.HasSuffix(r.URL.Path, "/health"):
			_, _ = io.WriteString(w, `{"status":"OK"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer stack.Close()
	args := []string{"-prometheus", stack.URL, "-tempo", stack.URL, "-loki", stack.URL, "-pyroscope", stack.URL,
		"-grafana", stack.URL, "-dashboards", "2", "-wait", "100ms", "-every", "10ms"}

	var out strings.Builder
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("a whole stack failed: %v\n%s", err, out.String())
	}
	for _, check := range []string{"prometheus", "tempo", "service-graph", "loki", "pyroscope", "grafana"} {
		if !strings.Contains(out.String(), "ok    "+check) {
			t.Errorf("no ok line for %s:\n%s", check, out.String())
		}
	}

	lokiLines = `[]`
	out.Reset()
	if err := run(context.Background(), args, &out); err == nil || !strings.Contains(out.String(), "FAIL  loki") {
		t.Errorf("no log line passed: %v\n%s", err, out.String())
	}
}
