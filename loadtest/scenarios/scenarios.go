// Package scenarios holds the load scenarios of the suite in one place,
// scenarios.json, which both runners read: the k6 scripts in ../k6 (open()
// in their init code) and loadrun on machines without k6. A scenario is an
// open-model arrival profile (k6's constant-arrival-rate or
// ramping-arrival-rate), the share of declined cards, an optional fault
// timeline, and thresholds written in k6's syntax, which loadrun evaluates
// the same way k6 does.
package scenarios

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed scenarios.json
var raw []byte

// Scenario is one entry of scenarios.json; the field names are k6's.
type Scenario struct {
	Name            string                 `json:"-"`
	Description     string                 `json:"description"`
	Executor        string                 `json:"executor"`
	Rate            float64                `json:"rate"`      // constant-arrival-rate: per second
	Duration        Duration               `json:"duration"`  // constant-arrival-rate
	StartRate       float64                `json:"startRate"` // ramping-arrival-rate: per second
	Stages          []Stage                `json:"stages"`    // ramping-arrival-rate
	PreAllocatedVUs int                    `json:"preAllocatedVUs"`
	MaxVUs          int                    `json:"maxVUs"`
	Declined        float64                `json:"declined"` // share of orders paid with a declined card
	Faults          []Fault                `json:"faults"`
	Thresholds      map[string][]Threshold `json:"thresholds"`
}

// Stage ramps the arrival rate linearly to Target over Duration.
type Stage struct {
	Duration Duration `json:"duration"`
	Target   float64  `json:"target"`
}

// Fault is one step of a fault timeline: at At, set Target's faults
// (PUT /admin/faults, every field not given is 0) or its Kafka consumption
// (PUT /admin/consumption).
type Fault struct {
	At          Duration       `json:"at"`
	Target      string         `json:"target"` // psp, inventory, payments or orders
	Faults      map[string]any `json:"faults,omitempty"`
	Consumption map[string]any `json:"consumption,omitempty"`
}

// Threshold is k6's threshold: an expression such as "p(95)<500", and
// whether a failure stops the run. scenarios.json may give the bare string.
type Threshold struct {
	Expr           string   `json:"threshold"`
	AbortOnFail    bool     `json:"abortOnFail"`
	DelayAbortEval Duration `json:"delayAbortEval"`
}

func (t *Threshold) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &t.Expr)
	}
	type plain Threshold
	return json.Unmarshal(b, (*plain)(t))
}

// Duration is a Go duration written as k6 writes it ("30s", "2m", "1h").
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// All returns every scenario, checked.
func All() (map[string]Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var all map[string]Scenario
	if err := dec.Decode(&all); err != nil {
		return nil, fmt.Errorf("scenarios.json: %w", err)
	}
	for name, s := range all {
		s.Name = name
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", name, err)
		}
		all[name] = s
	}
	return all, nil
}

// Get returns the named scenario.
func Get(name string) (Scenario, error) {
	all, err := All()
	if err != nil {
		return Scenario{}, err
	}
	s, ok := all[name]
	if !ok {
		return Scenario{}, fmt.Errorf("no scenario %q (have %s)", name, strings.Join(slices.Sorted(maps.Keys(all)), ", "))
	}
	return s, nil
}

// Targets are the processes a fault timeline may switch.
var Targets = []string{"orders", "payments", "inventory", "psp"}

func (s Scenario) check() error {
	switch s.Executor {
	case "constant-arrival-rate":
		if s.Rate <= 0 || s.Duration <= 0 || len(s.Stages) > 0 {
			return fmt.Errorf("constant-arrival-rate wants rate > 0 and duration > 0, no stages")
		}
	case "ramping-arrival-rate":
		if len(s.Stages) == 0 || s.Rate != 0 || s.Duration != 0 {
			return fmt.Errorf("ramping-arrival-rate wants stages, no rate or duration")
		}
	default:
		return fmt.Errorf("executor %q: want constant-arrival-rate or ramping-arrival-rate", s.Executor)
	}
	if s.PreAllocatedVUs <= 0 || s.MaxVUs < s.PreAllocatedVUs || s.Declined < 0 || s.Declined > 1 {
		return fmt.Errorf("want 0 < preAllocatedVUs <= maxVUs and 0 <= declined <= 1")
	}
	for _, f := range s.Faults {
		if !slices.Contains(Targets, f.Target) || (f.Faults == nil) == (f.Consumption == nil) || time.Duration(f.At) > s.Length() {
			return fmt.Errorf("fault at %v: want a target among %v, faults or consumption (one), within the run", time.Duration(f.At), Targets)
		}
	}
	if len(s.Thresholds) == 0 {
		return fmt.Errorf("no thresholds")
	}
	for metric, ts := range s.Thresholds {
		for _, t := range ts {
			if _, err := ParseExpr(t.Expr); err != nil {
				return fmt.Errorf("threshold %s: %w", metric, err)
			}
		}
	}
	return nil
}

// Length is how long arrivals go on.
func (s Scenario) Length() time.Duration {
	if s.Executor == "constant-arrival-rate" {
		return time.Duration(s.Duration)
	}
	var d time.Duration
	for _, st := range s.Stages {
		d += time.Duration(st.Duration)
	}
	return d
}

// RateAt is the arrival rate (per second) at t after the start, as k6's
// executors compute it: constant, or linear within each stage.
func (s Scenario) RateAt(t time.Duration) float64 {
	if s.Executor == "constant-arrival-rate" {
		return s.Rate
	}
	from := s.StartRate
	for _, st := range s.Stages {
		d := time.Duration(st.Duration)
		if t < d {
			return from + (st.Target-from)*float64(t)/float64(d)
		}
		t -= d
		from = st.Target
	}
	return from
}

// Expr is a parsed threshold expression: an aggregation, an operator and
// a number.
type Expr struct {
	Agg   string  // avg, min, max, med, count, rate, or p(N)
	P     float64 // the percentile, for p(N)
	Op    string
	Value float64
}

var exprRE = regexp.MustCompile(`^\s*(avg|min|max|med|count|rate|p\((\d+(?:\.\d+)?)\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$`)

// ParseExpr parses a k6 threshold expression such as "p(99)<300".
func ParseExpr(s string) (Expr, error) {
	m := exprRE.FindStringSubmatch(s)
	if m == nil {
		return Expr{}, fmt.Errorf("threshold %q: want <aggregation> <operator> <number>, as k6 writes it", s)
	}
	e := Expr{Agg: m[1], Op: m[3]}
	if m[2] != "" {
		e.Agg = "p"
		e.P, _ = strconv.ParseFloat(m[2], 64)
	}
	e.Value, _ = strconv.ParseFloat(m[4], 64)
	return e, nil
}

// Holds reports whether the aggregated value passes.
func (e Expr) Holds(v float64) bool {
	switch e.Op {
	case "<":
		return v < e.Value
	case "<=":
		return v <= e.Value
	case ">":
		return v > e.Value
	case ">=":
		return v >= e.Value
	case "!=":
		return v != e.Value
	default: // == and ===
		return math.Abs(v-e.Value) < 1e-9
	}
}
