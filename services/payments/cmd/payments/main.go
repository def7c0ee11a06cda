// Command payments charges orders through the payment provider once their
// stock is reserved, and refunds them when they are cancelled afterwards.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/chassis"
	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/retry"
	"github.com/example/sagasuite/services/payments/internal/httpapi"
	"github.com/example/sagasuite/services/payments/internal/postgres"
	"github.com/example/sagasuite/services/payments/internal/pspclient"
	"github.com/example/sagasuite/services/payments/internal/saga"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "payments:", err)
		os.Exit(1)
	}
}

type settings struct {
	chassis.Config
	PSPURL            string
	PSPTimeout        time.Duration
	Attempts          int
	ChargeConcurrency int
	RefundConcurrency int
	BreakerOpenFor    time.Duration
	BreakerFailures   int
	CallLease         time.Duration
}

// loadConfig reads the environment (CONTRACT.md) and reports every problem at once.
func loadConfig(getenv func(string) string) (settings, error) {
	env := config.New(getenv)
	s := settings{
		Config:     chassis.FromEnv(env, "payments", ":8082"),
		PSPURL:     env.URL("PSP_URL", "http://127.0.0.1:8090", "http", "https"),
		PSPTimeout: env.Duration("PSP_TIMEOUT", 2*time.Second),
		Attempts:   env.Int("PSP_CHARGE_ATTEMPTS", 3, 1, 10),
		// Refunds have their own pool: they compensate, so they must get
		// through when charges are saturated.
		ChargeConcurrency: env.Int("PSP_CHARGE_CONCURRENCY", 8, 1, 1000),
		RefundConcurrency: env.Int("PSP_REFUND_CONCURRENCY", 4, 1, 1000),
		BreakerOpenFor:    env.Duration("BREAKER_OPEN_FOR", 5*time.Second),
		BreakerFailures:   env.Int("BREAKER_FAILURES", 5, 1, 1000),
		// A decided provider call not recorded within this is made again
		// (a crash between the decision and the outcome): longer than a
		// call with its retries and its wait for a refund slot.
		CallLease: env.Duration("PSP_CALL_LEASE", 15*time.Second),
	}
	s.Version, s.Migrations = version, postgres.Migrations()
	s.Topics = []string{saga.OrdersTopic, saga.InventoryTopic, saga.PaymentsTopic}
	return s, env.Err()
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return chassis.Run(ctx, cfg.Config, getenv, stdout, func(svc *chassis.Service) error { return wire(svc, cfg) })
}

// wire adds payments' own parts to the chassis.
func wire(svc *chassis.Service, cfg settings) error {
	store := postgres.New(svc.Pool)
	guards, err := pspGuards(svc, cfg)
	if err != nil {
		return err
	}
	psp := pspclient.New(cfg.PSPURL, cfg.PSPTimeout, guards)
	handlers, err := saga.New(store, psp, svc.Tel.TracerProvider, svc.Tel.MeterProvider, cfg.CallLease)
	if err != nil {
		return err
	}
	if err := svc.Consume([]string{saga.OrdersTopic, saga.InventoryTopic}, handlers.Routes()); err != nil {
		return err
	}
	svc.Go(func(ctx context.Context) error { return handlers.Recover(ctx, time.Second, svc.Log) })
	httpapi.Routes(svc.Server.Echo, store)
	return nil
}

// pspGuards: one breaker and one retry budget for the provider, separate
// bulkheads for charges (fail fast when full: the saga compensates) and
// refunds (queue and wait: a refund must not be dropped).
func pspGuards(svc *chassis.Service, cfg settings) (pspclient.Guards, error) {
	mp := svc.Tel.MeterProvider
	br, err := breaker.New(breaker.Settings{Name: "psp", Failures: uint32(cfg.BreakerFailures), OpenFor: cfg.BreakerOpenFor, // #nosec G115 -- BREAKER_FAILURES is checked to be within 1..1000
		IsFailure: pspclient.Transient, Logger: svc.Log, MeterProvider: mp})
	if err != nil {
		return pspclient.Guards{}, err
	}
	charges, err := bulkhead.New(bulkhead.Settings{Name: "psp.charge", MaxConcurrent: cfg.ChargeConcurrency,
		MaxQueue: cfg.ChargeConcurrency, MaxWait: 100 * time.Millisecond, MeterProvider: mp})
	if err != nil {
		return pspclient.Guards{}, err
	}
	refunds, err := bulkhead.New(bulkhead.Settings{Name: "psp.refund", MaxConcurrent: cfg.RefundConcurrency,
		MaxQueue: 1000, MaxWait: 5 * time.Second, MeterProvider: mp})
	if err != nil {
		return pspclient.Guards{}, err
	}
	budget, err := retry.NewBudget(retry.BudgetSettings{Name: "psp", MeterProvider: mp})
	if err != nil {
		return pspclient.Guards{}, err
	}
	policy := retry.Policy{Attempts: cfg.Attempts, Base: 50 * time.Millisecond, Budget: budget, Retryable: pspclient.Transient}
	return pspclient.Guards{
		Charge: guard.Guard{Bulkhead: charges, Retry: policy, Breaker: br},
		Refund: guard.Guard{Bulkhead: refunds, Retry: policy, Breaker: br},
	}, nil
}
