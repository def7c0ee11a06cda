package scenarios

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// Kind is a k6 metric type; it decides which aggregations a threshold
// may use.
type Kind int

const (
	Trend   Kind = iota // durations in ms: avg, min, max, med, p(N), count
	Rate                // share of non-zero samples: rate
	Counter             // a sum: count, rate (per second)
)

// The metrics scenarios' thresholds may name. The k6 scripts (../k6/lib.js)
// and loadrun record each of them the same way.
const (
	PostDuration      = "http_req_duration{name:POST /orders}" // ms from POST sent to answer
	PostFailed        = "http_req_failed{name:POST /orders}"   // not 202 (k6's own, shedding included)
	OrdersFailed      = "orders_failed"                        // neither 202 nor 503 overloaded
	SagaCompletion    = "saga_completion"                      // ms from POST sent to the outcome seen
	OrdersShed        = "orders_shed"                          // POSTs answered 503 overloaded
	OrderOutcomeOK    = "order_outcome_ok"                     // accepted orders ending as their card says
	OrderTerminal     = "order_terminal"                       // accepted orders reaching an outcome within 60 s
	DeclinedConfirmed = "declined_confirmed"                   // declined cards whose order was confirmed
)

// Recorded are those metrics with their kinds.
var Recorded = map[string]Kind{
	PostDuration: Trend, PostFailed: Rate, OrdersFailed: Rate, SagaCompletion: Trend, OrdersShed: Rate,
	OrderOutcomeOK: Rate, OrderTerminal: Rate, DeclinedConfirmed: Counter,
}

// Metrics collects samples the way k6 does, so loadrun can evaluate the
// scenarios' thresholds. Safe for concurrent use.
type Metrics struct {
	mu      sync.Mutex
	kinds   map[string]Kind
	samples map[string][]float64
}

// NewMetrics declares the metrics a runner records.
func NewMetrics(kinds map[string]Kind) *Metrics {
	return &Metrics{kinds: kinds, samples: map[string][]float64{}}
}

// Add records one sample: a duration for a Trend (as ms), 0 or 1 for a
// Rate, an increment for a Counter.
func (m *Metrics) Add(metric string, v float64) {
	if _, ok := m.kinds[metric]; !ok {
		panic("undeclared metric " + metric)
	}
	m.mu.Lock()
	m.samples[metric] = append(m.samples[metric], v)
	m.mu.Unlock()
}

// AddDuration records a Trend sample.
func (m *Metrics) AddDuration(metric string, d time.Duration) {
	m.Add(metric, float64(d)/float64(time.Millisecond))
}

// AddBool records a Rate sample.
func (m *Metrics) AddBool(metric string, ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.Add(metric, v)
}

// Value aggregates a metric as a threshold expression asks, over a run
// of the given length (for a Counter's rate).
func (m *Metrics) Value(metric string, e Expr, elapsed time.Duration) (float64, error) {
	kind, ok := m.kinds[metric]
	if !ok {
		return 0, fmt.Errorf("no metric %s (have %v)", metric, slices.Sorted(maps.Keys(m.kinds)))
	}
	m.mu.Lock()
	xs := slices.Clone(m.samples[metric])
	m.mu.Unlock()
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	switch {
	case kind == Counter && e.Agg == "count":
		return sum, nil
	case kind == Counter && e.Agg == "rate":
		return sum / elapsed.Seconds(), nil
	case kind == Rate && e.Agg == "rate":
		nonzero := 0.0
		for _, x := range xs {
			if x != 0 {
				nonzero++
			}
		}
		if len(xs) == 0 {
			return 0, nil
		}
		return nonzero / float64(len(xs)), nil
	case kind == Trend:
		if len(xs) == 0 {
			return 0, nil
		}
		slices.Sort(xs)
		switch e.Agg {
		case "avg":
			return sum / float64(len(xs)), nil
		case "min":
			return xs[0], nil
		case "max":
			return xs[len(xs)-1], nil
		case "count":
			return float64(len(xs)), nil
		case "med":
			return Percentile(xs, 50), nil
		case "p":
			return Percentile(xs, e.P), nil
		}
	}
	return 0, fmt.Errorf("%s: k6 has no %s for this kind of metric", metric, e.Agg)
}

// Percentile of sorted xs, interpolated between the closest ranks as k6 does.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	rank := p / 100 * float64(len(xs)-1)
	lo := int(math.Floor(rank))
	hi := min(lo+1, len(xs)-1)
	return xs[lo] + (xs[hi]-xs[lo])*(rank-float64(lo))
}

// Result is one threshold checked at the end of a run.
type Result struct {
	Metric, Expr string
	Value        float64
	Pass         bool
	Err          error
}

// Check evaluates every threshold of s against m.
func (s Scenario) Check(m *Metrics, elapsed time.Duration) []Result {
	var out []Result
	for _, metric := range slices.Sorted(maps.Keys(s.Thresholds)) {
		for _, t := range s.Thresholds[metric] {
			e, err := ParseExpr(t.Expr)
			r := Result{Metric: metric, Expr: t.Expr, Err: err}
			if err == nil {
				r.Value, r.Err = m.Value(metric, e, elapsed)
				r.Pass = r.Err == nil && e.Holds(r.Value)
			}
			out = append(out, r)
		}
	}
	return out
}
