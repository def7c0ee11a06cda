package stackcheck

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The backends here stand in for Tempo, Loki, Pyroscope and Grafana, which
// do not run on these machines (no Docker; their Go modules are AGPL): they
// answer in the shape of each backend's documented API. The Prometheus
// checks run against a real Prometheus in the e2e suite.

func checker() Checker {
	return Checker{HTTP: http.DefaultClient, Since: time.Now().Add(-time.Minute), Services: []string{"orders", "inventory", "payments", "psp"}}
}

func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// tempoTrace is /api/v2/traces/{id}: OTLP JSON under "trace".
func tempoTrace(services ...string) string {
	var rs []string
	for _, s := range services {
		rs = append(rs, `{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"`+s+`"}}]},"scopeSpans":[{"scope":{"name":"x"},"spans":[{"traceId":"AAAA","name":"span"}]}]}`)
	}
	return `{"trace":{"resourceSpans":[` + strings.Join(rs, ",") + `]},"status":"complete"}`
}

func TestTraceNeedsASpanOfEveryService(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	body := tempoTrace("orders", "inventory", "payments", "psp")
	tempo := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/traces/"+id {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, body)
	})
	c := checker()
	if err := c.Trace(context.Background(), tempo, id); err != nil {
		t.Fatalf("a whole trace: %v", err)
	}
	body = tempoTrace("orders", "inventory", "payments")
	if err := c.Trace(context.Background(), tempo, id); err == nil || !strings.Contains(err.Error(), "psp") {
		t.Errorf("a trace without psp passed: %v", err)
	}
	if err := c.Trace(context.Background(), tempo, "fedcba9876543210fedcba9876543210"); err == nil {
		t.Error("a trace Tempo does not have passed")
	}
	if err := c.Trace(context.Background(), tempo, "not-an-id"); err == nil {
		t.Error("a malformed id passed")
	}
}

func TestServiceGraphNeedsEveryEdgeAndKafka(t *testing.T) {
	result := `{"metric":{"client":"orders","server":"inventory","connection_type":""},"value":[1,"3"]},
		{"metric":{"client":"payments","server":"psp","connection_type":""},"value":[1,"3"]}`
	prom := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Query().Get("query"), "traces_service_graph_request_total") {
			http.Error(w, "unexpected query", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[`+result+`]}}`)
	})
	want := []Edge{{"orders", "inventory"}, {"payments", "psp"}}
	c := checker()
	if err := c.ServiceGraph(context.Background(), prom, want); err == nil || !strings.Contains(err.Error(), "Kafka") {
		t.Errorf("a graph without a messaging edge passed: %v", err)
	}
	result += `,{"metric":{"client":"orders","server":"inventory","connection_type":"messaging_system"},"value":[1,"2"]}`
	if err := c.ServiceGraph(context.Background(), prom, want); err != nil {
		t.Errorf("a whole graph: %v", err)
	}
	if err := c.ServiceGraph(context.Background(), prom, append(want, Edge{"orders", "postgresql"})); err == nil || !strings.Contains(err.Error(), "orders→postgresql") {
		t.Errorf("a graph without orders→postgresql passed: %v", err)
	}
}

func TestLogsNeedATraceID(t *testing.T) {
	var gotQuery string
	streams := `[]`
	loki := serve(t, func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.Query().Get("query")
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"streams","result":`+streams+`}}`)
	})
	c := checker()
	if _, err := c.Logs(context.Background(), loki); err == nil {
		t.Error("no lines passed")
	}
	if !strings.Contains(gotQuery, "trace_id") {
		t.Errorf("the query does not ask for a trace id: %s", gotQuery)
	}
	streams = `[{"stream":{"service_name":"orders"},"values":[["1733300000000000000","order accepted"]]}]`
	if svc, err := c.Logs(context.Background(), loki); err != nil || svc != "orders" {
		t.Errorf("a line with a trace id: %q, %v", svc, err)
	}
}

func TestProfilesOfEveryService(t *testing.T) {
	have := map[string]bool{"orders": true, "inventory": true, "payments": true}
	pyro := serve(t, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ProfileTypeID string `json:"profileTypeID"`
			LabelSelector string `json:"labelSelector"`
			Start, End    int64
		}
		if r.URL.Path != "/querier.v1.QuerierService/SelectMergeStacktraces" || r.Header.Get("Content-Type") != "application/json" ||
			json.NewDecoder(r.Body).Decode(&req) != nil || req.ProfileTypeID != CPUProfile || req.Start >= req.End {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		total := "0"
		for s := range have {
			if req.LabelSelector == `{service_name="`+s+`"}` {
				total = "123456789"
			}
		}
		_, _ = io.WriteString(w, `{"flamegraph":{"names":["total"],"levels":[{"values":["0","1","1","0"]}],"total":"`+total+`","maxSelf":"1"}}`)
	})
	c := checker()
	if err := c.Profiles(context.Background(), pyro); err == nil || !strings.Contains(err.Error(), "psp") {
		t.Errorf("no psp profile passed: %v", err)
	}
	have["psp"] = true
	if err := c.Profiles(context.Background(), pyro); err != nil {
		t.Errorf("every profile: %v", err)
	}
}

func TestGrafanaDashboardsAndDatasources(t *testing.T) {
	lokiHealth := `{"status":"ERROR","message":"Unable to connect with Loki"}`
	grafana := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/search" && r.URL.Query().Get("tag") == "sagasuite":
			_, _ = io.WriteString(w, `[{"uid":"sagasuite-home"},{"uid":"sagasuite-overview"}]`)
		case r.URL.Path == "/api/datasources/uid/loki/health":
			_, _ = io.WriteString(w, lokiHealth)
		case strings.HasSuffix(r.URL.Path, "/health"):
			_, _ = io.WriteString(w, `{"status":"OK","message":"Data source is working"}`)
		default:
			http.NotFound(w, r)
		}
	})
	c := checker()
	if err := c.Grafana(context.Background(), grafana, 3, nil); err == nil {
		t.Error("2 dashboards of 3 passed")
	}
	if err := c.Grafana(context.Background(), grafana, 2, []string{"prometheus", "loki"}); err == nil || !strings.Contains(err.Error(), "loki") {
		t.Errorf("a failing datasource passed: %v", err)
	}
	lokiHealth = `{"status":"OK","message":"Data source successfully connected."}`
	if err := c.Grafana(context.Background(), grafana, 2, []string{"prometheus", "loki"}); err != nil {
		t.Errorf("all healthy: %v", err)
	}
}
