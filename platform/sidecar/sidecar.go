// Package sidecar registers a service in discovery on its behalf: it polls
// the service's /readyz and keeps the service registered (under a lease)
// while it answers 200, deregisters when readiness fails (Failures checks
// in a row, or at once when nothing listens: the service is gone) or the
// sidecar stops, and re-registers when the lease is lost. The service
// itself contains no registration code: that is the sidecar pattern.
// cmd/sidecar is the process around it.
package sidecar

import (
	"context"
	"errors"
	"net/http"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/observe"
)

// Config describes the service to register. Instance and ReadyURL are
// required.
type Config struct {
	Instance discovery.Instance
	ReadyURL string        // e.g. http://127.0.0.1:8083/readyz
	TTL      time.Duration // lease; 0 means 5 s
	Interval time.Duration // between readiness checks; 0 means 1 s
	// Failures is how many readiness checks in a row must fail before
	// the instance is deregistered (one slow or failed answer is not a
	// dead instance); 0 means 3. A refused connection deregisters at once.
	Failures int
}

// Run checks and registers in cli's etcd until ctx ends, then
// deregisters. It reports through tel.
func Run(ctx context.Context, cli *clientv3.Client, tel observe.Bundle, cfg Config) error {
	if err := tel.For("sidecar"); err != nil {
		return err
	}
	meter := tel.Meter("github.com/example/sagasuite/platform/sidecar")
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Failures <= 0 {
		cfg.Failures = 3
	}
	checks, err := meter.Int64Counter("sidecar.health_checks", metric.WithDescription("Readiness checks of the service, by result."),
		metric.WithUnit("{check}"))
	if err != nil {
		return err
	}
	regs, err := meter.Int64Counter("sidecar.registrations", metric.WithDescription("Registrations and deregistrations made, by action."),
		metric.WithUnit("{change}"))
	if err != nil {
		return err
	}
	svc := attribute.String("service", cfg.Instance.Service)
	httpc := &http.Client{Timeout: cfg.Interval}
	var reg *discovery.Registration
	deregister := func(why string) {
		if reg == nil {
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := reg.Close(dctx); err != nil {
			tel.Logger.Warn("deregister", "error", err) // the lease expires anyway
		}
		reg = nil
		regs.Add(dctx, 1, metric.WithAttributes(svc, attribute.String("action", "deregister")))
		tel.Logger.Info("deregistered", "service", cfg.Instance.Service, "instance", cfg.Instance.ID, "why", why)
	}
	defer deregister("sidecar stopping")
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	failed := 0 // checks failed in a row
	for {
		ready, gone := isReady(ctx, httpc, cfg.ReadyURL)
		result := "ready"
		if !ready {
			result = "not_ready"
			failed++
		} else {
			failed = 0
		}
		checks.Add(ctx, 1, metric.WithAttributes(svc, attribute.String("result", result)))
		if reg != nil {
			select {
			case <-reg.Lost():
				reg = nil // expired (etcd unreachable for a while): register again
			default:
			}
		}
		switch {
		case ready && reg == nil:
			r, err := discovery.Register(ctx, cli, cfg.Instance, cfg.TTL)
			if err != nil {
				tel.Logger.Warn("register", "error", err)
				break
			}
			reg = r
			regs.Add(ctx, 1, metric.WithAttributes(svc, attribute.String("action", "register")))
			tel.Logger.Info("registered", "service", cfg.Instance.Service, "instance", cfg.Instance.ID, "addr", cfg.Instance.Addr)
		case gone && reg != nil:
			deregister("the service does not listen")
		case failed >= cfg.Failures && reg != nil:
			deregister("readiness failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// isReady asks the service's /readyz; gone reports that nothing listens
// there (the connection was refused): the process is dead.
func isReady(ctx context.Context, c *http.Client, url string) (ready, gone bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, errors.Is(err, syscall.ECONNREFUSED)
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK, false
}
