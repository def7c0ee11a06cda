package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The search stops at the first rate that is not sustained and reports
// the one before it: here a suite that sheds every order after its 25th,
// so the second step (20 more orders) fails.
func TestSearchStopsAtTheFirstRateNotSustained(t *testing.T) {
	var placed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			n := placed.Add(1)
			if n > 25 {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `{"error":{"code":"overloaded","message":"refused"}}`)
				return
			}
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"order_id":"%d","status":"PENDING"}`, n)
		case strings.HasPrefix(r.URL.Path, "/orders/"):
			fmt.Fprint(w, `{"status":"CONFIRMED"}`)
		}
	}))
	defer srv.Close()
	spec, err := parseSearch("20:100:20", 500*time.Millisecond, 0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	best, err := search(context.Background(), &out, settings{orders: srv.URL}, spec)
	if err != nil {
		t.Fatal(err)
	}
	if best != 20 {
		t.Fatalf("sustained %g, want 20:\n%s", best, out.String())
	}
	if !strings.Contains(out.String(), "✗     40/s") {
		t.Errorf("no failed 40/s step in:\n%s", out.String())
	}
}

func TestParseSearch(t *testing.T) {
	for _, bad := range []string{"", "50", "50:10:5", "0:100:10", "a:b:c", "50:9000:50"} {
		if _, err := parseSearch(bad, time.Second, time.Second, time.Second); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
