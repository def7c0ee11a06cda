// Command loadrun runs the suite's load scenarios without k6: the same
// definitions and thresholds as the k6 scripts (loadtest/scenarios), an
// open model (arrivals do not wait for a slow system), and a summary that
// ends in a non-zero exit when a threshold fails.
//
// Each accepted order is followed to its outcome with one long poll
// (GET /orders/{id}?wait=), as the k6 scripts do. Orders the suite sheds
// (503 overloaded) are counted apart (orders_shed): shedding is the suite
// doing its job. A fault timeline (the chaos scenario) switches
// /admin/faults and /admin/consumption on the processes it names.
//
//	make load SCENARIO=smoke
//	go run ./loadtest/cmd/loadrun -scenario average
//	go run ./loadtest/cmd/loadrun -rate 50 -duration 60s   # ad hoc, no thresholds
//	go run ./loadtest/cmd/loadrun -search 50:1300:50        # throughput search (make bench)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/example/sagasuite/loadtest/scenarios"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadrun:", err)
		os.Exit(1)
	}
}

type settings struct {
	orders, psp, payments, token string
	inventory                    []string
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadrun", flag.ContinueOnError)
	name := fs.String("scenario", "", "a scenario of loadtest/scenarios/scenarios.json (smoke, average, stress, breakpoint, spike, soak, chaos)")
	rate := fs.Float64("rate", 50, "ad hoc run without -scenario: orders per second")
	duration := fs.Duration("duration", 30*time.Second, "ad hoc run without -scenario: how long to place orders")
	declined := fs.Float64("declined", 0, "ad hoc run without -scenario: share of orders paid with the declined test card")
	searchRates := fs.String("search", "", "throughput search FROM:TO:STEP orders/s: the highest rate whose every saga is CONFIRMED within -within")
	hold := fs.Duration("step-hold", 15*time.Second, "with -search: how long each rate is held")
	settle := fs.Duration("settle", 5*time.Second, "with -search: quiet between rates")
	within := fs.Duration("within", 5*time.Second, "with -search: how soon each saga must be CONFIRMED")
	var cfg settings
	fs.StringVar(&cfg.orders, "orders", envOr("BASE_URL", "http://127.0.0.1:8081"), "orders base URL (BASE_URL)")
	fs.StringVar(&cfg.psp, "psp", envOr("PSP_URL", "http://127.0.0.1:8090"), "psp base URL, for fault timelines (PSP_URL)")
	fs.StringVar(&cfg.payments, "payments", envOr("PAYMENTS_URL", "http://127.0.0.1:8082"), "payments base URL, for fault timelines (PAYMENTS_URL)")
	inventory := fs.String("inventory", envOr("INVENTORY_URLS", "http://127.0.0.1:8083,http://127.0.0.1:8084"), "inventory base URLs, for fault timelines (INVENTORY_URLS)")
	fs.StringVar(&cfg.token, "token", envOr("ADMIN_TOKEN", "dev-admin-token"), "admin token, for fault timelines (ADMIN_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.inventory = strings.Split(*inventory, ",")

	if *searchRates != "" {
		spec, err := parseSearch(*searchRates, *hold, *settle, *within)
		if err != nil {
			return err
		}
		_, err = search(ctx, out, cfg, spec)
		return err
	}
	var sc scenarios.Scenario
	if *name != "" {
		var err error
		if sc, err = scenarios.Get(*name); err != nil {
			return err
		}
	} else {
		if *rate <= 0 || *rate > 5000 || *duration <= 0 || *duration > time.Hour || *declined < 0 || *declined > 1 {
			return fmt.Errorf("want 0 < rate <= 5000, 0 < duration <= 1h and 0 <= declined <= 1")
		}
		sc = scenarios.Scenario{Name: "ad hoc", Executor: "constant-arrival-rate", Rate: *rate,
			Duration: scenarios.Duration(*duration), Declined: *declined}
	}
	fmt.Fprintf(out, "scenario %s: %s\n", sc.Name, sc.Description)
	r := newRunner(out, cfg, sc)
	elapsed, aborted := r.run(ctx)
	return r.report(out, elapsed, aborted)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// The metrics the scenarios' thresholds name (short names for this file).
const (
	postDuration      = scenarios.PostDuration
	postFailed        = scenarios.PostFailed
	ordersFailed      = scenarios.OrdersFailed
	sagaCompletion    = scenarios.SagaCompletion
	ordersShed        = scenarios.OrdersShed
	orderOutcomeOK    = scenarios.OrderOutcomeOK
	orderTerminal     = scenarios.OrderTerminal
	declinedConfirmed = scenarios.DeclinedConfirmed
)

type runner struct {
	out      io.Writer // progress: faults switched, aborts
	cfg      settings
	sc       scenarios.Scenario
	client   *http.Client
	metrics  *scenarios.Metrics
	mu       sync.Mutex
	outcomes map[string]int
	errs     []error
}

func newRunner(out io.Writer, cfg settings, sc scenarios.Scenario) *runner {
	return &runner{out: out, cfg: cfg, sc: sc,
		client:   &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}},
		metrics:  scenarios.NewMetrics(scenarios.Recorded),
		outcomes: map[string]int{},
	}
}

// run places orders at the scenario's arrival rate until its end (or an
// abortOnFail threshold fails), then waits for every order it follows.
func (r *runner) run(ctx context.Context) (time.Duration, bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { r.faults(ctx, start) })
	aborted := make(chan struct{})
	wg.Go(func() { r.watchAborts(ctx, start, aborted) })
	if r.sc.Length() > time.Minute { // a long scenario says how it goes
		wg.Go(func() { r.progress(ctx, start, 10*time.Second) })
	}

	followers := sync.WaitGroup{}
	length := r.sc.Length()
	next := time.Duration(0)
	i := 0
arrivals:
	for next < length {
		select {
		case <-ctx.Done():
			break arrivals
		case <-aborted:
			break arrivals
		case <-time.After(time.Until(start.Add(next))):
		}
		rate := r.sc.RateAt(next)
		if rate < 0.1 { // a ramp through 0: look again in a moment
			next += 100 * time.Millisecond
			continue
		}
		next += time.Duration(float64(time.Second) / rate)
		// Declined cards spread evenly: order i is declined when the running
		// count of declines owed steps up.
		card := goodCard
		if int(float64(i+1)*r.sc.Declined) > int(float64(i)*r.sc.Declined) {
			card = declinedCard
		}
		n := i
		followers.Go(func() { r.order(ctx, n, card) })
		i++
	}
	elapsed := time.Since(start)
	abortedRun := false
	select {
	case <-aborted:
		abortedRun = true
	default:
	}
	followers.Wait()
	cancel()
	wg.Wait()
	return elapsed, abortedRun
}

// watchAborts stops the run when a threshold with abortOnFail fails after
// its delayAbortEval, as k6 does (the breakpoint scenario).
func (r *runner) watchAborts(ctx context.Context, start time.Time, aborted chan<- struct{}) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for metric, ts := range r.sc.Thresholds {
			for _, t := range ts {
				if !t.AbortOnFail || time.Since(start) < time.Duration(t.DelayAbortEval) {
					continue
				}
				e, _ := scenarios.ParseExpr(t.Expr)
				if v, err := r.metrics.Value(metric, e, time.Since(start)); err == nil && !e.Holds(v) {
					fmt.Fprintf(r.out, "threshold %s %s failed at %v (value %.4g): stopping, the limit is below %.0f orders/s\n",
						metric, t.Expr, time.Since(start).Round(time.Second), v, r.sc.RateAt(time.Since(start)))
					close(aborted)
					return
				}
			}
		}
	}
}

// progress prints a line every interval: time, orders placed, and what
// became of them so far, so a long run is not silent for minutes.
func (r *runner) progress(ctx context.Context, start time.Time, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fmt.Fprintln(r.out, r.progressLine(time.Since(start)))
	}
}

// progressLine is one progress line at elapsed.
func (r *runner) progressLine(elapsed time.Duration) string {
	r.mu.Lock()
	outcomes := maps.Clone(r.outcomes)
	r.mu.Unlock()
	placed, parts := 0, []string{}
	for _, k := range slices.Sorted(maps.Keys(outcomes)) {
		placed += outcomes[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, outcomes[k]))
	}
	return fmt.Sprintf("%8s  %d orders done (%.1f/s at %.0f/s offered): %s", elapsed.Round(time.Second), placed,
		float64(placed)/elapsed.Seconds(), r.sc.RateAt(elapsed), strings.Join(parts, ", "))
}

func (r *runner) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *runner) report(out io.Writer, elapsed time.Duration, aborted bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, err := range r.errs {
		if i == 3 {
			fmt.Fprintf(out, "… and %d more errors\n", len(r.errs)-3)
			break
		}
		fmt.Fprintln(out, "error:", err)
	}
	total := 0
	for _, n := range r.outcomes {
		total += n
	}
	per := func(n int) float64 { return float64(n) / elapsed.Seconds() }
	fmt.Fprintf(out, "orders: %d in %v (%.1f/s), errors: %d, outcomes: %v\n", total, elapsed.Round(time.Millisecond),
		per(total), len(r.errs), r.outcomes)
	fmt.Fprintf(out, "accepted %.1f/s  shed %.1f/s  confirmed %.1f/s\n",
		per(r.outcomes["CONFIRMED"]+r.outcomes["CANCELLED"]+r.outcomes["PENDING"]), per(r.outcomes["shed"]), per(r.outcomes["CONFIRMED"]))
	fmt.Fprintf(out, "POST /orders     %s\n", r.trend(postDuration))
	fmt.Fprintf(out, "saga completion  %s\n", r.trend(sagaCompletion))
	if aborted {
		fmt.Fprintln(out, "the run was stopped early by an abortOnFail threshold")
	}
	failed := 0
	for _, res := range r.sc.Check(r.metrics, elapsed) {
		mark := "✓"
		if !res.Pass {
			mark, failed = "✗", failed+1
		}
		if res.Err != nil {
			fmt.Fprintf(out, "  %s %s %s: %v\n", mark, res.Metric, res.Expr, res.Err)
			continue
		}
		fmt.Fprintf(out, "  %s %s %s (%.4g)\n", mark, res.Metric, res.Expr, res.Value)
	}
	switch {
	case failed > 0:
		return fmt.Errorf("%d thresholds failed", failed)
	case len(r.sc.Thresholds) == 0 && len(r.errs) > 0:
		return fmt.Errorf("%d orders failed", len(r.errs))
	}
	return nil
}

// trend summarises a Trend metric (overhead.sh reads this line).
func (r *runner) trend(metric string) string {
	at := func(e scenarios.Expr) time.Duration {
		v, _ := r.metrics.Value(metric, e, 0)
		return time.Duration(v * float64(time.Millisecond)).Round(10 * time.Microsecond)
	}
	p := func(q float64) time.Duration { return at(scenarios.Expr{Agg: "p", P: q}) }
	return fmt.Sprintf("p50 %v  p90 %v  p99 %v  max %v", p(50), p(90), p(99), at(scenarios.Expr{Agg: "max"}))
}
