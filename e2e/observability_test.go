package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/stackcheck"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// query is one PromQL expression a dashboard panel or a rule runs.
type query struct {
	where, expr string
	k6Only      bool // series only k6's remote write produces
}

// dashboardQueries reads every panel query of every committed dashboard.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	files, err := filepath.Glob("../dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in ../dashboards (%v)", err)
	}
	var out []query
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Title       string `json:"title"`
				Description string `json:"description"`
				Targets     []struct {
					Expr       string `json:"expr"`
					Datasource struct {
						Type string `json:"type"`
					} `json:"datasource"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.Datasource.Type != "prometheus" { // Tempo and Loki panels: the compose stack's
					continue
				}
				out = append(out, query{where: filepath.Base(f) + " / " + p.Title, expr: tg.Expr,
					k6Only: strings.Contains(p.Description, "Data: k6 only")})
			}
		}
	}
	return out
}

// ruleQueries reads every rule of the repo's rule files, and the names
// the recording rules define.
func ruleQueries(t *testing.T) ([]query, map[string]bool) {
	t.Helper()
	files, _ := filepath.Glob("../prometheus/rules/*.rules.yml")
	if len(files) == 0 {
		t.Fatal("no rule files in ../prometheus/rules")
	}
	var out []query
	recorded := map[string]bool{}
	for _, f := range files {
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs)
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				name := r.Record + r.Alert
				out = append(out, query{where: filepath.Base(f) + " / " + name, expr: r.Expr})
				if r.Record != "" {
					recorded[r.Record] = true
				}
			}
		}
	}
	return out, recorded
}

// grafanaVars stand in for Grafana's variables so a query parses and runs.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "5m", "$service", ".*", "$testid", ".*")

// metricNames parses expr and returns the metric names it selects.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, nil
}

// Every panel query and every rule parses as PromQL, and names only
// metrics the running suite exports (by exact sample name: a histogram's
// _bucket, _count, _sum) or that a recording rule defines.
func TestDashboardsAndRulesNameOnlyExportedMetrics(t *testing.T) {
	waitTerminal(t, place(t, "c-dash", "SKU-0062", 1, "4000000000000002").OrderID)
	exported := exportedSamples(t)
	rules, recorded := ruleQueries(t)
	queries := append(dashboardQueries(t), rules...)
	for _, q := range queries {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Errorf("%s: does not parse: %v\n%s", q.where, err, q.expr)
			continue
		}
		if q.k6Only {
			continue
		}
		for _, n := range names {
			if !exported[n] && !recorded[n] {
				t.Errorf("%s: names %s, which no process exports and no rule records", q.where, n)
			}
		}
	}
	t.Logf("%d queries checked", len(queries))
}

// exportedSamples is every sample name the suite's processes export.
func exportedSamples(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for fam := range scrapeAll(t) {
		out[fam] = true
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			out[fam+suffix] = true
		}
	}
	return out
}

// A real Prometheus scrapes the running suite, with the repo's rules,
// while orders flow (declines included): every panel query returns data,
// except panels whose series only k6 produces; latency histograms carry
// trace exemplars.
func TestPrometheusAnswersEveryPanel(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: apt-get install prometheus (Debian), or put a prometheus 2.x binary on PATH")
	}
	dir := t.TempDir()
	rules, _ := filepath.Abs("../prometheus/rules")
	jobs := map[string][]string{} // one job per binary, as in prometheus/prometheus.dev.yml
	for name, p := range suite.procs {
		jobs[p.binary] = append(jobs[p.binary], name)
	}
	cfg := "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - " + rules + "/*.rules.yml\nscrape_configs:\n"
	for _, job := range slices.Sorted(func(yield func(string) bool) {
		for j := range jobs {
			if !yield(j) {
				return
			}
		}
	}) {
		cfg += "  - job_name: " + job + "\n    static_configs:\n      - targets: ["
		for i, proc := range jobs[job] {
			u, _ := url.Parse(suite.urls[proc])
			if i > 0 {
				cfg += ", "
			}
			cfg += `"` + u.Host + `"`
		}
		cfg += "]\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	port, _ := freePort()
	prom := "http://127.0.0.1:" + port
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+port, "--enable-feature=exemplar-storage")
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	// Orders flow while Prometheus scrapes: confirmed and declined.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			card := "4242424242424242"
			if i%4 == 0 {
				card = "4000000000000002"
			}
			_, _, _ = call(http.MethodPost, suite.urls["orders"]+"/orders", orderBody("c-prom", fmt.Sprintf("SKU-%04d", 60+i%5), 1, card), nil)
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	var last []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		time.Sleep(2 * time.Second)
		last = last[:0]
		for _, q := range dashboardQueries(t) {
			if q.k6Only {
				continue
			}
			if n, err := promQuery(prom, grafanaVars.Replace(q.expr)); err != nil || n == 0 {
				last = append(last, fmt.Sprintf("%s: %d series, %v\n    %s", q.where, n, err, q.expr))
			}
		}
		if len(last) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(last) > 0 {
		b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
		t.Fatalf("panels without data from a real Prometheus:\n%s\nprometheus log:\n%s", strings.Join(last, "\n"), tail(string(b), 15))
	}

	// Latency histograms carry the trace id of a request as exemplar.
	resp, err := http.Get(prom + "/api/v1/query_exemplars?query=" + url.QueryEscape(`saga_duration_seconds_bucket`) +
		fmt.Sprintf("&start=%d&end=%d", time.Now().Add(-5*time.Minute).Unix(), time.Now().Unix()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ex struct {
		Data []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ex); err != nil || len(ex.Data) == 0 || len(ex.Data[0].Exemplars) == 0 ||
		len(ex.Data[0].Exemplars[0].Labels["trace_id"]) != 32 {
		t.Fatalf("no trace exemplars on saga_duration_seconds (%v): %+v", err, ex)
	}
	t.Run("stackcheck", func(t *testing.T) { stackCheckFindsAWholeExemplarTrace(t, prom) })
}

// promQuery runs an instant query and returns how many series answered.
func promQuery(base, expr string) (int, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s", r.Error)
	}
	return len(r.Data.Result), nil
}

// stackCheckFindsAWholeExemplarTrace runs the compose workflow's first
// check (platform/stackcheck) against the real Prometheus scraping the suite: it finds finished sagas and
// returns an exemplar's trace id, and that id is a whole trace (spans of
// orders, inventory, payments and psp), which is what its Tempo check
// then looks up.
func stackCheckFindsAWholeExemplarTrace(t *testing.T, prom string) {
	t.Helper()
	since := time.Now().Add(-time.Second)
	waitTerminal(t, place(t, "c-stack", "SKU-0064", 1, "4242424242424242").OrderID)
	c := stackcheck.Checker{HTTP: &http.Client{Timeout: 10 * time.Second}, Since: since,
		Services: []string{"orders", "inventory", "payments", "psp"}}
	var id string
	eventually(t, "an exemplar trace id from the scraped saga histogram", func() error {
		var err error
		id, err = c.Metrics(context.Background(), prom)
		return err
	})
	eventually(t, "the exemplar's trace with spans of every service", func() error {
		seen := map[string]bool{}
		for _, s := range suite.spans.Trace(id) {
			seen[s.Service] = true
		}
		for _, svc := range c.Services {
			if !seen[svc] {
				return fmt.Errorf("trace %s has no span of %s (has %v)", id, svc, seen)
			}
		}
		return nil
	})
}
