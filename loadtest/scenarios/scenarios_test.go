package scenarios

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every scenario is valid, has its k6 script, and names only metrics that
// both runners record; every k6 script is a scenario.
func TestScenariosAndK6ScriptsAgree(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"smoke", "average", "stress", "breakpoint", "spike", "soak", "chaos"} {
		if _, ok := all[want]; !ok {
			t.Errorf("no %s scenario", want)
		}
	}
	lib, err := os.ReadFile("../k6/lib.js")
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range all {
		script, err := os.ReadFile(filepath.Join("../k6", name+".js"))
		if err != nil {
			t.Errorf("scenario %s has no k6 script: %v", name, err)
			continue
		}
		if !strings.Contains(string(script), "'"+name+"')") || !strings.Contains(string(script), "open('../scenarios/scenarios.json')") {
			t.Errorf("%s.js does not take its options from scenarios.json's %q", name, name)
		}
		if len(s.Faults) > 0 && !strings.Contains(string(script), "faultTimeline") {
			t.Errorf("%s has a fault timeline, and %s.js does not export faultTimeline", name, name)
		}
		for metric := range s.Thresholds {
			if _, ok := Recorded[metric]; !ok {
				t.Errorf("%s: threshold on %s, which neither runner records", name, metric)
			}
		}
	}
	scripts, _ := filepath.Glob("../k6/*.js")
	for _, f := range scripts {
		name := strings.TrimSuffix(filepath.Base(f), ".js")
		if _, ok := all[name]; !ok && name != "lib" {
			t.Errorf("k6/%s.js is not a scenario of scenarios.json", name)
		}
	}
	// lib.js records every metric under the same name.
	for metric := range Recorded {
		base, tag, _ := strings.Cut(strings.TrimSuffix(metric, "}"), "{name:")
		var pattern string
		if tag != "" {
			pattern = `name: '` + regexp.QuoteMeta(tag) + `'` // a built-in http_req_* sub-metric
		} else {
			pattern = `new (Trend|Rate|Counter)\('` + regexp.QuoteMeta(base) + `'`
		}
		if !regexp.MustCompile(pattern).Match(lib) {
			t.Errorf("k6/lib.js does not record %s", metric)
		}
	}
}

func TestRampingRateFollowsTheStages(t *testing.T) {
	s := Scenario{Executor: "ramping-arrival-rate", StartRate: 10, Stages: []Stage{
		{Duration: Duration(10 * time.Second), Target: 110}, {Duration: Duration(5 * time.Second), Target: 110},
		{Duration: Duration(10 * time.Second), Target: 0},
	}}
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{0, 10}, {5 * time.Second, 60}, {10 * time.Second, 110}, {14 * time.Second, 110}, {20 * time.Second, 55}, {30 * time.Second, 0}} {
		if got := s.RateAt(c.at); got != c.want {
			t.Errorf("rate at %v: %v, want %v", c.at, got, c.want)
		}
	}
	if s.Length() != 25*time.Second {
		t.Errorf("length %v", s.Length())
	}
}

// Thresholds are evaluated as k6 evaluates them, and a failing one fails.
func TestThresholds(t *testing.T) {
	m := NewMetrics(Recorded)
	for i := 1; i <= 100; i++ {
		m.AddDuration(SagaCompletion, time.Duration(i)*time.Millisecond)
		m.AddBool(OrdersShed, i <= 3)
	}
	s := Scenario{Thresholds: map[string][]Threshold{
		SagaCompletion:    {{Expr: "p(95)<96"}, {Expr: "p(99) < 99"}, {Expr: "avg<=50.5"}, {Expr: "max==100"}, {Expr: "med>50"}},
		OrdersShed:        {{Expr: "rate<0.05"}, {Expr: "rate<0.01"}},
		DeclinedConfirmed: {{Expr: "count==0"}},
	}}
	got := map[string]bool{}
	for _, r := range s.Check(m, time.Second) {
		if r.Err != nil {
			t.Fatalf("%s %s: %v", r.Metric, r.Expr, r.Err)
		}
		got[r.Metric+" "+r.Expr] = r.Pass
	}
	want := map[string]bool{
		"saga_completion p(95)<96": true, "saga_completion p(99) < 99": false, "saga_completion avg<=50.5": true,
		"saga_completion max==100": true, "saga_completion med>50": true,
		"orders_shed rate<0.05": true, "orders_shed rate<0.01": false, "declined_confirmed count==0": true,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: pass=%v, want %v", k, got[k], v)
		}
	}
	if _, err := ParseExpr("p95<3"); err == nil {
		t.Error("a malformed threshold parsed")
	}
	if _, err := m.Value(OrdersShed, Expr{Agg: "p", P: 99}, time.Second); err == nil {
		t.Error("a percentile of a Rate: k6 refuses it, so must loadrun")
	}
	if !slices.Contains(Targets, "psp") {
		t.Error("psp is a fault target")
	}
}
