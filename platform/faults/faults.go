// Package faults lets an operator make a service slow or failing on
// purpose, so users (and the chaos load scenario) can watch breakers,
// bulkheads, retries and the saga react. GET and PUT /admin/faults (behind
// the admin token) read and set {"latency_ms", "error_rate"}, applied to
// the process's business endpoints until changed; health, readiness,
// metrics and admin endpoints are never affected.
//
// A service opts in explicitly: its cmd/<name>/main.go creates the
// Injector and its routes.go installs Middleware and Routes. To drop it
// from one service, delete those lines there.
package faults

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/observe"
)

// Faults is what is injected.
type Faults struct {
	LatencyMS int     `json:"latency_ms"` // added before each business request
	ErrorRate float64 `json:"error_rate"` // share of business requests answered 500
}

// Injector holds the current faults. It is safe for concurrent use.
type Injector struct {
	// Detached latency delays a request without ending it when the client
	// gives up, as a slow third party does: it still does the work after
	// the client stopped waiting (the payment-provider simulator). By
	// default the delay ends with the request, as the service's own
	// handlers would.
	Detached bool

	mu sync.RWMutex
	f  Faults
}

// Get returns the current faults.
func (i *Injector) Get() Faults {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.f
}

// Set replaces the faults.
func (i *Injector) Set(f Faults) {
	i.mu.Lock()
	i.f = f
	i.mu.Unlock()
}

// Middleware applies the faults to every route but the platform's own.
func (i *Injector) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := c.Request().URL.Path
		if p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/admin/") {
			return next(c)
		}
		f := i.Get()
		if f.LatencyMS > 0 {
			ctx := c.Request().Context()
			if i.Detached {
				ctx = context.WithoutCancel(ctx)
			}
			if err := sleep(ctx, time.Duration(f.LatencyMS)*time.Millisecond); err != nil {
				return err
			}
		}
		if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate { // #nosec G404 -- injected faults are a test aid, not a secret
			return httpserver.NewError(http.StatusInternalServerError, "injected_fault", "error injected by /admin/faults")
		}
		return next(c)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Routes serves GET and PUT /faults on g (the admin group).
func (i *Injector) Routes(g *echo.Group) {
	g.GET("/faults", func(c echo.Context) error { return c.JSON(http.StatusOK, i.Get()) })
	g.PUT("/faults", func(c echo.Context) error {
		var f Faults
		if err := httpserver.Bind(c, &f); err != nil {
			return err
		}
		bad := map[string]string{}
		if f.LatencyMS < 0 || f.LatencyMS > 60_000 {
			bad["latency_ms"] = "0 to 60000"
		}
		if f.ErrorRate < 0 || f.ErrorRate > 1 {
			bad["error_rate"] = "0.0 to 1.0"
		}
		if err := httpserver.Invalid(bad); err != nil {
			return err
		}
		i.Set(f)
		return c.JSON(http.StatusOK, f)
	})
}

// Probe reports whether one more kind of fault is on (for example paused
// Kafka consumption: Consumption.Probe).
type Probe func() (kind string, active bool)

// Export publishes faults.active{kind} through tel: 1 while a kind of fault is
// switched on (latency, errors, and each probe's kind), else 0, so a
// dashboard can shade the time a fault was on.
func (i *Injector) Export(tel observe.Bundle, probes ...Probe) error {
	if err := tel.For("faults"); err != nil {
		return err
	}
	meter := tel.Meter("github.com/example/sagasuite/platform/faults")
	g, err := meter.Int64ObservableGauge("faults.active", metric.WithDescription("1 while a kind of injected fault is on, else 0."))
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		f := i.Get()
		report := func(kind string, on bool) {
			v := int64(0)
			if on {
				v = 1
			}
			o.ObserveInt64(g, v, metric.WithAttributes(attribute.String("kind", kind)))
		}
		report("latency", f.LatencyMS > 0)
		report("errors", f.ErrorRate > 0)
		for _, p := range probes {
			report(p())
		}
		return nil
	}, g)
	return err
}
