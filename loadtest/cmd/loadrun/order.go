package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The test cards of psp (api/openapi.yaml, POST /charges).
const (
	goodCard     = "4242424242424242"
	declinedCard = "4000000000000002"
)

// order places one order and follows it to its outcome, recording what
// the k6 scripts record (loadtest/k6/lib.js).
func (r *runner) order(ctx context.Context, i int, card string) {
	body, _ := json.Marshal(map[string]any{
		"customer_id": fmt.Sprintf("load-%d", i%1000),
		"items":       []map[string]any{{"sku": fmt.Sprintf("SKU-%04d", 1+i%100), "quantity": 1 + i%3}},
		"payment":     map[string]string{"card_number": card},
	})
	sent := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.orders+"/orders", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		r.metrics.AddBool(postFailed, true)
		r.metrics.AddBool(ordersFailed, true)
		r.count("error")
		r.fail(fmt.Errorf("POST /orders: %w", err))
		return
	}
	var o struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
		Error   struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	err = json.NewDecoder(resp.Body).Decode(&o)
	_ = resp.Body.Close()
	r.metrics.AddDuration(postDuration, time.Since(sent))
	accepted := err == nil && resp.StatusCode == http.StatusAccepted
	// 503 overloaded is the suite shedding load, an answer it means to
	// give; any other refusal (503 inventory_unavailable from an open
	// breaker, a 5xx) is a failed order.
	shed := resp.StatusCode == http.StatusServiceUnavailable && o.Error.Code == "overloaded"
	r.metrics.AddBool(postFailed, !accepted)
	r.metrics.AddBool(ordersShed, shed)
	r.metrics.AddBool(ordersFailed, !accepted && !shed)
	switch {
	case shed:
		r.count("shed")
		return
	case !accepted:
		r.count(fmt.Sprintf("%d %s", resp.StatusCode, o.Error.Code))
		r.fail(fmt.Errorf("POST /orders: status %d %s %v", resp.StatusCode, o.Error.Code, err))
		return
	}

	status, err := r.follow(ctx, o.OrderID, sent)
	r.metrics.AddBool(orderTerminal, err == nil)
	if err != nil {
		r.metrics.AddBool(orderOutcomeOK, false)
		r.count("PENDING")
		r.fail(fmt.Errorf("order %s: %w", o.OrderID, err))
		return
	}
	r.metrics.AddDuration(sagaCompletion, time.Since(sent))
	want := "CONFIRMED"
	if card == declinedCard {
		want = "CANCELLED"
		if status == "CONFIRMED" {
			r.metrics.Add(declinedConfirmed, 1)
		}
	}
	r.metrics.AddBool(orderOutcomeOK, status == want)
	r.count(status)
}

var errNotFinished = errors.New("not finished within 60 s")

// follow long-polls the order until it leaves PENDING (one request when
// the saga ends within the wait).
func (r *runner) follow(ctx context.Context, id string, sent time.Time) (string, error) {
	for time.Since(sent) < 60*time.Second {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.orders+"/orders/"+id+"?wait=30s", nil)
		resp, err := r.client.Do(req)
		if err != nil {
			return "", err
		}
		var o struct {
			Status string `json:"status"`
		}
		err = json.NewDecoder(resp.Body).Decode(&o)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET: status %d %v", resp.StatusCode, err)
		}
		if o.Status != "PENDING" {
			return o.Status, nil
		}
	}
	return "", errNotFinished
}

func (r *runner) count(outcome string) {
	r.mu.Lock()
	r.outcomes[outcome]++
	r.mu.Unlock()
}
