package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/example/sagasuite/loadtest/scenarios"
)

// searchSpec is the throughput search of -search: rates from From to To
// by Step orders/s, each held for Hold, with Settle of quiet between them.
type searchSpec struct {
	From, To, Step float64
	Hold, Settle   time.Duration
	// Within is how soon every saga of a step must be CONFIRMED for the
	// step to count as sustained.
	Within time.Duration
}

func parseSearch(s string, hold, settle, within time.Duration) (searchSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return searchSpec{}, fmt.Errorf("-search %q: want FROM:TO:STEP, e.g. 50:1300:50", s)
	}
	var v [3]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f > 5000 {
			return searchSpec{}, fmt.Errorf("-search %q: %q is not a rate in (0, 5000]", s, p)
		}
		v[i] = f
	}
	if v[0] > v[1] || hold <= 0 || settle < 0 || within <= 0 {
		return searchSpec{}, fmt.Errorf("-search %q: want FROM <= TO, a positive -step-hold and -within", s)
	}
	return searchSpec{From: v[0], To: v[1], Step: v[2], Hold: hold, Settle: settle, Within: within}, nil
}

// stepResult is one rate of the search.
type stepResult struct {
	Rate                     float64
	Placed, Confirmed, Other int            // Other: shed, refused, failed or not confirmed
	Others                   map[string]int // Other by outcome
	Completion               [2]time.Duration
	Sustained                bool
}

// sustained says whether every order of the step was accepted and
// CONFIRMED within the limit.
func sustained(r *runner, within time.Duration) stepResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := stepResult{Rate: r.sc.Rate, Others: map[string]int{}}
	for outcome, n := range r.outcomes {
		res.Placed += n
		if outcome == "CONFIRMED" {
			res.Confirmed += n
		} else {
			res.Other += n
			res.Others[outcome] += n
		}
	}
	p := func(q float64) time.Duration {
		v, _ := r.metrics.Value(sagaCompletion, scenarios.Expr{Agg: "p", P: q}, 0)
		return time.Duration(v * float64(time.Millisecond))
	}
	worst, _ := r.metrics.Value(sagaCompletion, scenarios.Expr{Agg: "max"}, 0)
	res.Completion = [2]time.Duration{p(50), p(99)}
	res.Sustained = res.Placed > 0 && res.Other == 0 && len(r.errs) == 0 &&
		time.Duration(worst*float64(time.Millisecond)) <= within
	return res
}

// search raises the open-model arrival rate step by step until a step is
// not sustained, and reports the highest rate that was: the suite's
// throughput, in completed sagas per second.
func search(ctx context.Context, out io.Writer, cfg settings, spec searchSpec) (best float64, err error) {
	fmt.Fprintf(out, "search: %g to %g orders/s by %g, %v each, %v apart; sustained = every order CONFIRMED within %v\n",
		spec.From, spec.To, spec.Step, spec.Hold, spec.Settle, spec.Within)
	for rate := spec.From; rate <= spec.To; rate += spec.Step {
		sc := scenarios.Scenario{Name: "search", Executor: "constant-arrival-rate", Rate: rate, Duration: scenarios.Duration(spec.Hold)}
		r := newRunner(io.Discard, cfg, sc)
		r.run(ctx)
		if ctx.Err() != nil {
			return best, ctx.Err()
		}
		res := sustained(r, spec.Within)
		mark := "✓"
		if !res.Sustained {
			mark = "✗"
		}
		fmt.Fprintf(out, "  %s %6.0f/s  placed %d  confirmed %d  other %d %v  saga p50 %v  p99 %v\n", mark, rate, res.Placed,
			res.Confirmed, res.Other, res.Others, res.Completion[0].Round(time.Millisecond), res.Completion[1].Round(time.Millisecond))
		if !res.Sustained {
			break
		}
		best = rate
		select {
		case <-ctx.Done():
			return best, ctx.Err()
		case <-time.After(spec.Settle):
		}
	}
	fmt.Fprintf(out, "sustained: %g sagas/s\n", best)
	return best, nil
}
