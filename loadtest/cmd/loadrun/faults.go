package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// faults plays the scenario's fault timeline, and heals every process it
// touched when the run ends, however it ends.
func (r *runner) faults(ctx context.Context, start time.Time) {
	if len(r.sc.Faults) == 0 {
		return
	}
	defer r.heal()
	for _, f := range r.sc.Faults {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(time.Duration(f.At)))):
		}
		path, body := "/admin/faults", f.Faults
		if f.Consumption != nil {
			path, body = "/admin/consumption", f.Consumption
		}
		for _, base := range r.urls(f.Target) {
			if err := r.put(ctx, base+path, body); err != nil {
				r.fail(err)
				continue
			}
			fmt.Fprintf(r.out, "%6v  %s %s %v\n", time.Since(start).Round(time.Second), f.Target, path, body)
		}
	}
}

func (r *runner) heal() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	touched := map[string]bool{}
	for _, f := range r.sc.Faults {
		touched[f.Target] = true
	}
	for target := range touched {
		for _, base := range r.urls(target) {
			_ = r.put(ctx, base+"/admin/faults", map[string]any{})
			if target != "psp" {
				_ = r.put(ctx, base+"/admin/consumption", map[string]any{"paused": false})
			}
		}
	}
}

func (r *runner) urls(target string) []string {
	switch target {
	case "psp":
		return []string{r.cfg.psp}
	case "payments":
		return []string{r.cfg.payments}
	case "inventory":
		return r.cfg.inventory
	default:
		return []string{r.cfg.orders}
	}
}

func (r *runner) put(ctx context.Context, url string, body map[string]any) error {
	// A fault object not given in full means "the rest off" (0).
	if _, ok := body["paused"]; !ok {
		full := map[string]any{"latency_ms": 0, "error_rate": 0}
		for k, v := range body {
			full[k] = v
		}
		body = full
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.cfg.token)
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", url, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: status %d", url, resp.StatusCode)
	}
	return nil
}
