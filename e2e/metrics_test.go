package e2e

import (
	"bytes"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/example/sagasuite/platform/procfile"
)

// contractMetrics are the families docs/observability.md promises
// ("Names"), by their exact Prometheus family names, and the
// labels each must carry. go_* and process_* are checked by prefix.
var contractMetrics = map[string][]string{
	"http_server_request_duration_seconds":     {"http_request_method", "http_route"},
	"http_client_request_duration_seconds":     {"http_request_method"},
	"messaging_client_sent_messages_total":     {"messaging_destination_name", "messaging_operation_name"},
	"messaging_client_consumed_messages_total": {"messaging_destination_name"},
	"messaging_process_duration_seconds":       {"messaging_destination_name"},
	"kafka_consumer_group_lag":                 {"group", "topic", "partition"},
	"db_client_operation_duration_seconds":     {"db_namespace"},
	"db_client_connection_count":               {"db_client_connection_state"},
	"db_client_connection_pending_requests":    nil,
	"outbox_published_total":                   {"topic"},
	"outbox_lag_seconds":                       {"topic"},
	"outbox_pending_messages":                  nil,
	"outbox_oldest_pending_age_seconds":        nil,
	"inbox_duplicates_total":                   {"consumer"},
	"orders_placed_total":                      nil,
	"saga_duration_seconds":                    {"outcome", "reason"},
	"saga_in_flight":                           nil,
	"orders_shed_total":                        {"reason"},
	"payments_total":                           {"status", "reason"},
	"breaker_state":                            {"breaker"},
	"breaker_transitions_total":                {"breaker", "from", "to"},
	"breaker_calls_total":                      {"breaker", "outcome"},
	"bulkhead_inflight":                        {"bulkhead"},
	"bulkhead_queued":                          {"bulkhead"},
	"bulkhead_rejected_total":                  {"bulkhead"},
	"retry_budget_denied_total":                {"budget"},
	"faults_active":                            {"kind"},
	"election_leader":                          {"election", "instance_id"},
	"election_leadership_changes_total":        {"election"},
	"discovery_instances":                      {"service"},
	"sidecar_registrations_total":              {"service", "action"},
	"projection_lag_events":                    {"projection"},
	"projection_lag_seconds":                   {"projection"},
	"projection_events_applied_total":          {"projection"},
	"projection_rebuild_progress_ratio":        {"projection"},
}

// metricsOfEachProcess returns every running process's /metrics body.
func metricsOfEachProcess(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for name, url := range suite.urls {
		if _, running := suite.procs[name]; !running {
			continue
		}
		status, body, err := call(http.MethodGet, url+"/metrics", nil, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s /metrics: %d %v", name, status, err)
		}
		out[name] = body
	}
	return out
}

// scrapeAll parses every process's /metrics (Prometheus text format) and
// returns each family with the label names seen on it, across processes.
func scrapeAll(t *testing.T) map[string]map[string]bool {
	t.Helper()
	families := map[string]map[string]bool{}
	for name, body := range metricsOfEachProcess(t) {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s /metrics does not parse: %v", name, err)
		}
		for fam, mf := range mfs {
			if families[fam] == nil {
				families[fam] = map[string]bool{}
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					families[fam][l.GetName()] = true
				}
			}
		}
	}
	return families
}

// Every family docs/observability.md names is exported, under its exact name and with
// its labels, once the suite has done a little of everything (the tests
// before this one: declines, a psp outage, redeliveries, a leader's death).
func TestEveryContractMetricIsExported(t *testing.T) {
	// A declined card and an unknown SKU, so outcome series exist even
	// when this test runs alone.
	waitTerminal(t, place(t, "c-metrics", "SKU-0061", 1, "4000000000000002").OrderID)
	families := scrapeAll(t)
	var missing []string
	for fam, labels := range contractMetrics {
		got, ok := families[fam]
		if !ok {
			missing = append(missing, fam)
			continue
		}
		for _, l := range labels {
			if !got[l] {
				t.Errorf("%s is exported without the label %s (has %v)", fam, l, keys(got))
			}
		}
	}
	for _, prefix := range []string{"go_", "process_"} {
		if !slices.ContainsFunc(keys(families), func(f string) bool { return strings.HasPrefix(f, prefix) }) {
			missing = append(missing, prefix+"*")
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("not exported by any process: %s", strings.Join(missing, ", "))
	}
	// election_leader must not carry "instance": Prometheus would rename
	// it exported_instance (its own target label).
	if families["election_leader"]["instance"] {
		t.Error("election_leader carries the label instance, which collides with Prometheus' target label")
	}
}

// Every process reports the version deploy/build.sh stamped into it
// (-ldflags -X main.version), as service.version on target_info.
func TestEveryProcessReportsItsBuildVersion(t *testing.T) {
	for name, body := range metricsOfEachProcess(t) {
		if want := `service_version="` + buildVersion + `"`; !regexp.MustCompile(`(?m)^target_info\{.*` + want).Match(body) {
			t.Errorf("%s: target_info does not carry %s", name, want)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The suite runs every process of dev.procfile (a service added with make
// new-service too), each ready.
func TestEveryProcessOfTheProcfileIsReady(t *testing.T) {
	groups, err := procfile.Read("../dev.procfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		for _, p := range g {
			if p.ReadyURL() == "" {
				continue // the broker and etcd: the suite's own
			}
			if _, ok := suite.procs[p.Name]; !ok {
				t.Errorf("%s (bin/%s) is not running", p.Name, p.Binary)
				continue
			}
			if status, body, err := call(http.MethodGet, suite.urls[p.Name]+"/readyz", nil, nil); status != http.StatusOK {
				t.Errorf("%s /readyz: %d %s %v", p.Name, status, body, err)
			}
		}
	}
}

// The "Names" table of docs/observability.md, which users and dashboards
// rely on, lists exactly the families this suite checks, with the same
// labels.
func TestObservabilityDocsNameTheCheckedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(raw), "\n## Names\n")
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([^|]*) \\|")
	documented := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		var labels []string
		for _, l := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(m[2], -1) {
			labels = append(labels, l[1])
		}
		documented[m[1]] = labels
	}
	if len(documented) == 0 {
		t.Fatal(`docs/observability.md has no "Names" table`)
	}
	for fam, labels := range contractMetrics {
		doc, ok := documented[fam]
		if !ok {
			t.Errorf("docs/observability.md does not list %s", fam)
			continue
		}
		if !slices.Equal(slices.Sorted(slices.Values(doc)), slices.Sorted(slices.Values(labels))) {
			t.Errorf("%s: docs/observability.md lists labels %v, the test checks %v", fam, doc, labels)
		}
	}
	for fam := range documented {
		if _, ok := contractMetrics[fam]; !ok {
			t.Errorf("docs/observability.md lists %s, which no test checks is exported", fam)
		}
	}
}
