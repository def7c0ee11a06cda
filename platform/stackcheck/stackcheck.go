// Package stackcheck asks each observability backend of the compose stack
// whether it holds the suite's telemetry: Prometheus a saga metric with a
// trace exemplar and Tempo's service-graph edges, Tempo that exemplar's
// trace across every service, Loki a log line carrying a trace id,
// Pyroscope a CPU profile of every service, Grafana its dashboards and
// datasources. The compose workflow (.github/workflows/compose.yml) runs
// it after a k6 smoke run; each check says what is missing rather than
// just failing, because the person reading it did not watch the run.
package stackcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Checker holds what every check shares.
type Checker struct {
	HTTP *http.Client
	// Since is when the run began: traces, logs, profiles and exemplars
	// must be newer.
	Since time.Time
	// Services are the processes every trace and profile check expects.
	Services []string
}

var traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// get fetches u (a POST when body is not nil) and decodes its JSON answer.
func (c Checker) get(ctx context.Context, u string, body any, out any) error {
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		method, rd = http.MethodPost, strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %.300s", method, u, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	return nil
}

type promVector struct {
	Status string `json:"status"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

func (c Checker) promQuery(ctx context.Context, base, expr string) (promVector, error) {
	var v promVector
	err := c.get(ctx, base+"/api/v1/query?query="+url.QueryEscape(expr), nil, &v)
	return v, err
}

// Metrics checks that Prometheus has scraped finished sagas and keeps a
// trace exemplar on their latency histogram, and returns that trace id
// (the newest), which Trace then looks up in Tempo.
func (c Checker) Metrics(ctx context.Context, prometheus string) (string, error) {
	v, err := c.promQuery(ctx, prometheus, `sum(saga_duration_seconds_count)`)
	if err != nil {
		return "", err
	}
	if len(v.Data.Result) == 0 || v.Data.Result[0].Value[1] == "0" {
		return "", errors.New("prometheus: no finished saga (saga_duration_seconds_count)")
	}
	var ex struct {
		Data []struct {
			Exemplars []struct {
				Labels    map[string]string `json:"labels"`
				Timestamp float64           `json:"timestamp"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	q := url.Values{"query": {"saga_duration_seconds_bucket"},
		"start": {strconv.FormatInt(c.Since.Unix(), 10)}, "end": {strconv.FormatInt(time.Now().Unix()+60, 10)}}
	if err := c.get(ctx, prometheus+"/api/v1/query_exemplars?"+q.Encode(), nil, &ex); err != nil {
		return "", err
	}
	newest, at := "", 0.0
	for _, series := range ex.Data {
		for _, e := range series.Exemplars {
			if id := e.Labels["trace_id"]; traceIDPattern.MatchString(id) && e.Timestamp >= at {
				newest, at = id, e.Timestamp
			}
		}
	}
	if newest == "" {
		return "", errors.New("prometheus: no exemplar with a trace_id on saga_duration_seconds_bucket since the run began")
	}
	return newest, nil
}

// Edge is one edge of Tempo's service graph: client calls server.
type Edge struct{ Client, Server string }

// ServiceGraph checks that Tempo's metrics generator wrote the service
// graph to Prometheus with every edge of want, and at least one edge
// through Kafka (connection_type="messaging_system").
func (c Checker) ServiceGraph(ctx context.Context, prometheus string, want []Edge) error {
	v, err := c.promQuery(ctx, prometheus, `sum by (client, server, connection_type) (traces_service_graph_request_total)`)
	if err != nil {
		return err
	}
	have := map[Edge]bool{}
	messaging := false
	var seen []string
	for _, r := range v.Data.Result {
		have[Edge{r.Metric["client"], r.Metric["server"]}] = true
		messaging = messaging || r.Metric["connection_type"] == "messaging_system"
		seen = append(seen, r.Metric["client"]+"→"+r.Metric["server"])
	}
	var missing []string
	for _, e := range want {
		if !have[e] {
			missing = append(missing, e.Client+"→"+e.Server)
		}
	}
	if !messaging {
		missing = append(missing, "an edge through Kafka (connection_type=messaging_system)")
	}
	if len(missing) > 0 {
		slices.Sort(seen)
		return fmt.Errorf("service graph: missing %s (has %v)", strings.Join(missing, ", "), seen)
	}
	return nil
}

// otlpAttrs is an OTLP JSON attribute list.
type otlpAttrs []struct {
	Key   string `json:"key"`
	Value struct {
		StringValue string `json:"stringValue"`
	} `json:"value"`
}

func (a otlpAttrs) get(key string) string {
	for _, kv := range a {
		if kv.Key == key {
			return kv.Value.StringValue
		}
	}
	return ""
}

type resourceSpans []struct {
	Resource struct {
		Attributes otlpAttrs `json:"attributes"`
	} `json:"resource"`
	ScopeSpans []struct {
		Spans []json.RawMessage `json:"spans"`
	} `json:"scopeSpans"`
}

// Trace checks that Tempo holds trace id with spans of every service.
func (c Checker) Trace(ctx context.Context, tempo, id string) error {
	if !traceIDPattern.MatchString(id) {
		return fmt.Errorf("tempo: %q is not a trace id", id)
	}
	var got struct {
		Trace struct {
			ResourceSpans resourceSpans `json:"resourceSpans"`
		} `json:"trace"`
		Batches resourceSpans `json:"batches"` // /api/traces, Tempo before 2.5
	}
	if err := c.get(ctx, tempo+"/api/v2/traces/"+id, nil, &got); err != nil {
		return fmt.Errorf("tempo: trace %s: %w", id, err)
	}
	spans := map[string]int{}
	for _, rs := range append(got.Trace.ResourceSpans, got.Batches...) {
		for _, ss := range rs.ScopeSpans {
			spans[rs.Resource.Attributes.get("service.name")] += len(ss.Spans)
		}
	}
	var missing []string
	for _, s := range c.Services {
		if spans[s] == 0 {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("tempo: trace %s has no span of %v (spans by service: %v)", id, missing, spans)
	}
	return nil
}

// Logs checks that Loki holds a log line of the suite carrying a trace id
// (OTLP logs keep it as structured metadata), written since the run began.
func (c Checker) Logs(ctx context.Context, loki string) (string, error) {
	q := url.Values{"query": {`{service_name=~".+"} | trace_id=~"[0-9a-f]{32}"`}, "limit": {"5"}, "direction": {"backward"},
		"start": {strconv.FormatInt(c.Since.UnixNano(), 10)}, "end": {strconv.FormatInt(time.Now().Add(time.Minute).UnixNano(), 10)}}
	var got struct {
		Data struct {
			Result []struct {
				Stream map[string]string `json:"stream"`
				Values [][]any           `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := c.get(ctx, loki+"/loki/api/v1/query_range?"+q.Encode(), nil, &got); err != nil {
		return "", fmt.Errorf("loki: %w", err)
	}
	for _, s := range got.Data.Result {
		if len(s.Values) > 0 {
			return s.Stream["service_name"], nil
		}
	}
	return "", errors.New("loki: no log line with a trace_id since the run began")
}

// CPUProfile is the profile type every Go process of the suite pushes.
const CPUProfile = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

// Profiles checks that Pyroscope holds CPU samples of every service since
// the run began.
func (c Checker) Profiles(ctx context.Context, pyroscope string) error {
	var missing []string
	for _, s := range c.Services {
		body := map[string]any{"profileTypeID": CPUProfile, "labelSelector": `{service_name="` + s + `"}`,
			"start": c.Since.UnixMilli(), "end": time.Now().Add(time.Minute).UnixMilli(), "maxNodes": 16}
		var got struct {
			Flamegraph struct {
				Total json.Number `json:"total"` // an int64: a string in protobuf's JSON
			} `json:"flamegraph"`
		}
		if err := c.get(ctx, pyroscope+"/querier.v1.QuerierService/SelectMergeStacktraces", body, &got); err != nil {
			return fmt.Errorf("pyroscope: %w", err)
		}
		if n, err := got.Flamegraph.Total.Int64(); err != nil || n == 0 {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("pyroscope: no CPU profile of %v since the run began", missing)
	}
	return nil
}

// Grafana checks that Grafana serves the suite's dashboards (tag
// sagasuite, at least want of them) and that each datasource answers
// Grafana's own health check, so the panels and links can load.
func (c Checker) Grafana(ctx context.Context, grafana string, want int, datasources []string) error {
	var found []struct {
		UID string `json:"uid"`
	}
	if err := c.get(ctx, grafana+"/api/search?type=dash-db&tag=sagasuite", nil, &found); err != nil {
		return fmt.Errorf("grafana: %w", err)
	}
	if len(found) < want {
		return fmt.Errorf("grafana: %d dashboards tagged sagasuite, want %d", len(found), want)
	}
	for _, uid := range datasources {
		var h struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		}
		if err := c.get(ctx, grafana+"/api/datasources/uid/"+uid+"/health", nil, &h); err != nil {
			return fmt.Errorf("grafana: datasource %s: %w", uid, err)
		}
		if h.Status != "OK" {
			return fmt.Errorf("grafana: datasource %s: %s %s", uid, h.Status, h.Message)
		}
	}
	return nil
}
