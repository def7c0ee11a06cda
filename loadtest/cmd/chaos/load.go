package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// loadResult is what the load saw. Every order carries an idempotency
// key, so a POST whose answer was lost (orders killed mid-request) is
// sent again until the suite says what became of it.
type loadResult struct {
	offered  int
	accepted map[string]string // order id → idempotency key
	refused  map[string]int    // by code: overloaded, inventory_unavailable, …
	unknown  []string          // keys never answered: looked up by customer later
	postP99  time.Duration
	shedAt   []time.Time // when each order refused as overloaded was offered
}

type loadSummary struct {
	Offered  int            `json:"offered"`
	Accepted int            `json:"accepted"`
	Refused  map[string]int `json:"refused"`
	Unknown  int            `json:"unanswered"`
	PostP99  string         `json:"post_p99"`
}

func (l loadResult) summary() loadSummary {
	return loadSummary{Offered: l.offered, Accepted: len(l.accepted), Refused: l.refused, Unknown: len(l.unknown), PostP99: l.postP99.String()}
}

var cards = []struct {
	number string
	share  float64
}{
	{"4000000000000002", 0.07}, // declined
	{"4000000000009995", 0.03}, // insufficient funds
	{"4000000000000119", 0.05}, // provider error
}

// offer places orders at o.rate until ctx ends (an open model: a slow
// suite does not slow the arrivals).
func offer(ctx context.Context, s *suite, o options, rng *rand.Rand) loadResult {
	res := loadResult{accepted: map[string]string{}, refused: map[string]int{}}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		posts []time.Duration
	)
	interval := time.Duration(float64(time.Second) / o.rate)
	next := time.Now()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			res.postP99 = p99(posts)
			return res
		case <-time.After(time.Until(next)):
		}
		next = next.Add(interval)
		sku := "SKU-0001" // the hot SKU: it runs out
		if rng.Float64() >= 0.2 {
			sku = fmt.Sprintf("SKU-%04d", 2+rng.IntN(99))
		}
		card, r := "4242424242424242", rng.Float64()
		for _, c := range cards {
			if r < c.share {
				card = c.number
				break
			}
			r -= c.share
		}
		key := fmt.Sprintf("chaos-%d-%d", o.seed, i)
		body, _ := json.Marshal(map[string]any{"customer_id": key,
			"items": []map[string]any{{"sku": sku, "quantity": 1 + rng.IntN(3)}}, "payment": map[string]string{"card_number": card}})
		res.offered++
		wg.Add(1)
		go func() {
			defer wg.Done()
			offered := time.Now()
			id, code, took := place(client, s.byName["orders"].url, key, body)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case id != "":
				res.accepted[id] = key
				posts = append(posts, took)
			case code != "":
				res.refused[code]++
				if code == "overloaded" {
					res.shedAt = append(res.shedAt, offered)
				}
			default:
				res.unknown = append(res.unknown, key)
			}
		}()
	}
}

// place POSTs an order, again with the same key while no answer comes
// (orders down or restarting), for up to 30 s. It returns the order id,
// or the code of a refusal.
func place(client *http.Client, base, key string, body []byte) (id, code string, took time.Duration) {
	deadline := time.Now().Add(30 * time.Second)
	for wait := 100 * time.Millisecond; time.Now().Before(deadline); wait = min(wait*2, 2*time.Second) {
		sent := time.Now()
		req, _ := http.NewRequest(http.MethodPost, base+"/orders", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			time.Sleep(wait)
			continue
		}
		var out struct {
			OrderID string `json:"order_id"`
			Error   struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&out)
		_ = resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted && derr == nil:
			return out.OrderID, "", time.Since(sent)
		case resp.StatusCode >= 500 && out.Error.Code == "":
			time.Sleep(wait) // not the service's answer (a proxy, a crash mid-answer)
			continue
		case out.Error.Code != "":
			return "", out.Error.Code, time.Since(sent)
		default:
			return "", fmt.Sprintf("status_%d", resp.StatusCode), time.Since(sent)
		}
	}
	return "", "", 0
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)].Round(time.Millisecond)
}
