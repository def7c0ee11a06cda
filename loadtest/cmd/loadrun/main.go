// Command loadrun places orders at a constant arrival rate (an open model:
// a slow system does not slow the arrivals down) against a running suite
// and reports POST /orders latency and saga completion time (POST sent to
// terminal status observed) as percentiles. Each accepted order is followed
// to its outcome with one long poll (GET /orders/{id}?wait=), so measuring
// adds one request per order, not a stream of polls. Orders the suite sheds
// (503 overloaded) are counted apart: shedding is the suite doing its job.
// It is the stand-in for the k6 scenarios on machines without k6, and
// stops by itself.
//
//	go run ./loadtest/cmd/loadrun -rate 50 -duration 60s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadrun:", err)
		os.Exit(1)
	}
}

type result struct {
	post, saga time.Duration
	status     string // the order's outcome, or "shed"
	err        error
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadrun", flag.ContinueOnError)
	base := fs.String("orders", "http://127.0.0.1:8081", "orders base URL")
	rate := fs.Float64("rate", 50, "orders per second")
	duration := fs.Duration("duration", 30*time.Second, "how long to place orders")
	declineShare := fs.Float64("declined", 0, "share of orders paid with the declined test card")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *rate > 5000 || *duration <= 0 || *duration > time.Hour {
		return fmt.Errorf("want 0 < rate <= 5000 and 0 < duration <= 1h")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	interval := time.Duration(float64(time.Second) / *rate)
	start := time.Now()
	next := start
	for i := 0; time.Since(start) < *duration; i++ {
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		next = next.Add(interval)
		card := "4242424242424242"
		if rand.Float64() < *declineShare {
			card = "4000000000000002"
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := order(ctx, client, *base, i, card)
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	return report(out, results, *duration) // rates over the arrival window
}

func order(ctx context.Context, client *http.Client, base string, i int, card string) result {
	body, _ := json.Marshal(map[string]any{
		"customer_id": fmt.Sprintf("load-%d", i%1000),
		"items":       []map[string]any{{"sku": fmt.Sprintf("SKU-%04d", 1+i%100), "quantity": 1 + i%3}},
		"payment":     map[string]string{"card_number": card},
	})
	sent := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/orders", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err}
	}
	var o struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	err = json.NewDecoder(resp.Body).Decode(&o)
	resp.Body.Close()
	r := result{post: time.Since(sent)}
	if resp.StatusCode == http.StatusServiceUnavailable {
		r.status = "shed"
		return r
	}
	if err != nil || resp.StatusCode != http.StatusAccepted {
		r.err = fmt.Errorf("POST: status %d %v", resp.StatusCode, err)
		return r
	}
	deadline := sent.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/orders/"+o.OrderID+"?wait=30s", nil)
		resp, err := client.Do(req)
		if err != nil {
			r.err = err
			return r
		}
		err = json.NewDecoder(resp.Body).Decode(&o)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			r.err = fmt.Errorf("GET %s: status %d %v", o.OrderID, resp.StatusCode, err)
			return r
		}
		if o.Status != "PENDING" {
			r.saga, r.status = time.Since(sent), o.Status
			return r
		}
	}
	r.err = fmt.Errorf("order %s not finished in 60 s", o.OrderID)
	return r
}

func report(out io.Writer, rs []result, elapsed time.Duration) error {
	var posts, sagas []time.Duration
	statuses := map[string]int{}
	errs := 0
	for _, r := range rs {
		if r.err != nil {
			if errs < 3 {
				fmt.Fprintln(out, "error:", r.err)
			}
			errs++
			continue
		}
		posts = append(posts, r.post)
		statuses[r.status]++
		if r.status != "shed" {
			sagas = append(sagas, r.saga)
		}
	}
	per := func(n int) float64 { return float64(n) / elapsed.Seconds() }
	fmt.Fprintf(out, "orders: %d in %v (%.1f/s), errors: %d, outcomes: %v\n", len(rs), elapsed.Round(time.Millisecond),
		per(len(rs)), errs, statuses)
	fmt.Fprintf(out, "accepted %.1f/s  shed %.1f/s  confirmed %.1f/s\n", per(len(sagas)), per(statuses["shed"]), per(statuses["CONFIRMED"]))
	fmt.Fprintf(out, "POST /orders     %s\n", pct(posts))
	fmt.Fprintf(out, "saga completion  %s\n", pct(sagas))
	if errs > 0 {
		return fmt.Errorf("%d orders failed", errs)
	}
	return nil
}

func pct(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	slices.Sort(ds)
	at := func(p float64) time.Duration {
		return ds[min(len(ds)-1, int(p*float64(len(ds))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v  p90 %v  p99 %v  max %v", at(0.50), at(0.90), at(0.99), ds[len(ds)-1].Round(10*time.Microsecond))
}
