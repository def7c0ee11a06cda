package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/sagasuite/loadtest/scenarios"
)

// fakeOrders answers like the orders service: 202 with an id, then the
// outcome on GET ?wait=, decided by outcome(card). refuseEvery > 0
// answers every n-th POST 503 with the error code refusal.
func fakeOrders(t *testing.T, outcome func(card string) string, refuseEvery int64, refusal ...string) (*httptest.Server, *sync.Map) {
	t.Helper()
	var n atomic.Int64
	cards := &sync.Map{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/orders":
			var o struct {
				Payment struct {
					CardNumber string `json:"card_number"`
				} `json:"payment"`
			}
			if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			i := n.Add(1)
			if refuseEvery > 0 && i%refuseEvery == 0 {
				code := "overloaded"
				if len(refusal) > 0 {
					code = refusal[0]
				}
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, `{"error":{"code":%q,"message":"refused"}}`, code)
				return
			}
			id := fmt.Sprint(i)
			cards.Store(id, o.Payment.CardNumber)
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"order_id":%q,"status":"PENDING"}`, id)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/orders/"):
			card, _ := cards.Load(strings.TrimPrefix(r.URL.Path, "/orders/"))
			fmt.Fprintf(w, `{"status":%q}`, outcome(card.(string)))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, cards
}

func scenario(rate float64, d time.Duration, thresholds map[string][]scenarios.Threshold) scenarios.Scenario {
	return scenarios.Scenario{Name: "test", Executor: "constant-arrival-rate", Rate: rate, Duration: scenarios.Duration(d),
		Declined: 0.2, PreAllocatedVUs: 1, MaxVUs: 1, Thresholds: thresholds}
}

var asCardSays = func(card string) string {
	if card == declinedCard {
		return "CANCELLED"
	}
	return "CONFIRMED"
}

func TestRunnerPassesWhenTheSuiteBehaves(t *testing.T) {
	srv, cards := fakeOrders(t, asCardSays, 0)
	sc := scenario(200, time.Second, map[string][]scenarios.Threshold{
		scenarios.OrderOutcomeOK: {{Expr: "rate==1"}}, scenarios.OrdersShed: {{Expr: "rate==0"}},
		scenarios.DeclinedConfirmed: {{Expr: "count==0"}}, scenarios.PostFailed: {{Expr: "rate==0"}},
	})
	r := newRunner(io.Discard, settings{orders: srv.URL}, sc)
	elapsed, aborted := r.run(context.Background())
	var out strings.Builder
	if err := r.report(&out, elapsed, aborted); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	placed, declined := 0, 0
	cards.Range(func(_, c any) bool {
		placed++
		if c == declinedCard {
			declined++
		}
		return true
	})
	// An open model: the arrivals follow the rate, whatever the answers.
	if placed < 180 || placed > 201 {
		t.Errorf("placed %d orders in 1 s at 200/s", placed)
	}
	if declined < placed/6 || declined > placed/4 {
		t.Errorf("%d of %d orders with the declined card, want about 20%%", declined, placed)
	}
}

func TestRunnerFailsOnABrokenSuite(t *testing.T) {
	// Confirms declined cards, and sheds one POST in 10.
	srv, _ := fakeOrders(t, func(string) string { return "CONFIRMED" }, 10)
	sc := scenario(100, time.Second, map[string][]scenarios.Threshold{
		scenarios.DeclinedConfirmed: {{Expr: "count==0"}}, scenarios.OrdersShed: {{Expr: "rate<0.01"}},
	})
	r := newRunner(io.Discard, settings{orders: srv.URL}, sc)
	elapsed, aborted := r.run(context.Background())
	var out strings.Builder
	err := r.report(&out, elapsed, aborted)
	if err == nil || !strings.Contains(out.String(), "✗ declined_confirmed") || !strings.Contains(out.String(), "✗ orders_shed") {
		t.Fatalf("err %v, summary:\n%s", err, out.String())
	}
}

// A 503 from an open breaker is a failed order, not load shedding.
func TestRefusalsOtherThanOverloadedAreFailures(t *testing.T) {
	srv, _ := fakeOrders(t, asCardSays, 5, "inventory_unavailable")
	sc := scenario(100, time.Second, map[string][]scenarios.Threshold{
		scenarios.OrdersShed: {{Expr: "rate==0"}}, scenarios.OrdersFailed: {{Expr: "rate>0.15"}, {Expr: "rate<0.25"}},
		scenarios.PostFailed: {{Expr: "rate>0.15"}},
	})
	r := newRunner(io.Discard, settings{orders: srv.URL}, sc)
	elapsed, aborted := r.run(context.Background())
	var out strings.Builder
	if err := r.report(&out, elapsed, aborted); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

// A fault timeline switches the admin endpoints with the token, and heals
// at the end.
func TestFaultTimeline(t *testing.T) {
	srv, _ := fakeOrders(t, asCardSays, 0)
	var mu sync.Mutex
	var calls []string
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
	}))
	defer admin.Close()
	sc := scenario(20, 500*time.Millisecond, map[string][]scenarios.Threshold{scenarios.OrderTerminal: {{Expr: "rate==1"}}})
	sc.Faults = []scenarios.Fault{
		{At: scenarios.Duration(100 * time.Millisecond), Target: "psp", Faults: map[string]any{"error_rate": 0.5}},
		{At: scenarios.Duration(200 * time.Millisecond), Target: "payments", Consumption: map[string]any{"paused": true}},
	}
	r := newRunner(io.Discard, settings{orders: srv.URL, psp: admin.URL, payments: admin.URL, token: "tok"}, sc)
	elapsed, aborted := r.run(context.Background())
	if err := r.report(io.Discard, elapsed, aborted); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	joined := strings.Join(calls, "\n")
	for _, want := range []string{
		`PUT /admin/faults {"error_rate":0.5,"latency_ms":0}`,
		`PUT /admin/consumption {"paused":true}`,
		`PUT /admin/consumption {"paused":false}`, // healed
		`PUT /admin/faults {"error_rate":0,"latency_ms":0}`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %q among the admin calls:\n%s", want, joined)
		}
	}
}

// A long run prints a progress line: orders done and their outcomes.
func TestProgressLine(t *testing.T) {
	r := newRunner(io.Discard, settings{}, scenario(20, 5*time.Minute, nil))
	r.count("CONFIRMED")
	r.count("CONFIRMED")
	r.count("shed")
	line := r.progressLine(10 * time.Second)
	for _, want := range []string{"10s", "3 orders done", "0.3/s at 20/s offered", "CONFIRMED 2", "shed 1"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
}
