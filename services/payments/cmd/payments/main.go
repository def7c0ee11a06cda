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
	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/process"
	"github.com/example/sagasuite/platform/retry"
	"github.com/example/sagasuite/platform/telemetry"
	"github.com/example/sagasuite/platform/tlsfiles"
	"github.com/example/sagasuite/services/payments/internal/httpapi"
	"github.com/example/sagasuite/services/payments/internal/paymentsdb"
	"github.com/example/sagasuite/services/payments/internal/pspclient"
	"github.com/example/sagasuite/services/payments/internal/saga"
	"github.com/example/sagasuite/services/payments/paymentevents"
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
	Process           process.Config
	DB                postgres.Settings
	Kafka             kafka.Settings
	InboxRetention    time.Duration
	PSPURL            string
	PSPCAFile         string
	PSPTimeout        time.Duration
	Attempts          int
	ChargeConcurrency int
	RefundConcurrency int
	BreakerOpenFor    time.Duration
	BreakerFailures   int
	CallLease         time.Duration
	DecideWithin      time.Duration
}

// loadConfig reads the environment (README, "Configuration") and reports every problem at once.
func loadConfig(getenv func(string) string) (settings, error) {
	env := config.New(getenv)
	s := settings{
		Process:        process.FromEnv(env, "payments", version, ":8082"),
		DB:             postgres.FromEnv(env, "payments"),
		Kafka:          kafka.FromEnv(env),
		InboxRetention: inbox.RetentionFromEnv(env),
		PSPURL:         env.URL("PSP_URL", "http://127.0.0.1:8090", "http", "https"),
		PSPCAFile:      env.String("PSP_CA_FILE", ""),
		PSPTimeout:     env.Duration("PSP_TIMEOUT", 2*time.Second),
		Attempts:       env.Int("PSP_CHARGE_ATTEMPTS", 3, 1, 10),
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
		// A charge whose outcome is unknown (timeout, reset, 5xx) is made
		// again with its key until the provider says what it did; the
		// order is given up (payment_unavailable) after this, under
		// orders' SAGA_TIMEOUT, and refunded if the charge was made.
		DecideWithin: env.Duration("PSP_DECIDE_WITHIN", 10*time.Second),
	}
	return s, env.Err()
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return process.Run(ctx, cfg.Process, getenv, stdout, func(p *process.Process, tel *telemetry.Telemetry) error {
		return assemble(ctx, p, tel, cfg)
	})
}

// assemble adds to p every pattern payments uses, one block each: its
// database, Kafka with the outbox relay, the saga consumer (inbox, retry,
// dead-letter), the provider client behind its guards, fault injection
// and the HTTP routes. No etcd: payments neither discovers nor elects.
func assemble(ctx context.Context, p *process.Process, tel *telemetry.Telemetry, cfg settings) error {
	obs := tel.Bundle // where every component reports

	// PostgreSQL: payments' own database and tables.
	db, err := postgres.Connect(ctx, cfg.DB, obs, postgres.Config{})
	if err != nil {
		return err
	}
	p.Add("postgres", db)
	store, err := paymentsdb.Setup(ctx, db.Pool)
	if err != nil {
		return err
	}

	// Kafka, and the outbox relay: events leave with the change that caused them.
	pub, err := kafka.Connect(ctx, cfg.Kafka, obs, append([]string{paymentevents.Topic}, saga.Topics...)...)
	if err != nil {
		return err
	}
	p.Add("kafka", pub)
	relay, err := outbox.Setup(ctx, db.Pool, pub, obs, outbox.RelayConfig{})
	if err != nil {
		return err
	}
	p.Add("outbox", relay)
	store.Outbox(relay.Write) // events are handed to the relay as their transactions commit

	// The provider, behind its circuit breaker, bulkheads and retries.
	guards, err := pspGuards(obs, cfg)
	if err != nil {
		return err
	}
	// PSP_CA_FILE: psp's certificate must come from this CA.
	pspTransport, err := tlsfiles.Transport(cfg.PSPCAFile)
	if err != nil {
		return err
	}
	psp := pspclient.New(cfg.PSPURL, cfg.PSPTimeout, guards, tel.Transport(pspTransport))

	// The saga: charge once placed and reserved, refund when cancelled.
	handlers, err := saga.New(store, psp, obs, saga.Config{Lease: cfg.CallLease, DecideWithin: cfg.DecideWithin})
	if err != nil {
		return err
	}
	in, err := inbox.Setup(ctx, db.Pool, obs, inbox.Config{Consumer: "payments", Retention: cfg.InboxRetention})
	if err != nil {
		return err
	}
	p.Add("inbox", in)
	// Waiting messages are applied in batches (one transaction each); a
	// batch that fails is applied again one message at a time.
	routes := handlers.Routes()
	retries, err := kafka.Retry(obs, 5*time.Second)
	if err != nil {
		return err
	}
	consumer, err := kafka.NewConsumer(in.Handler(routes), obs, kafka.ConsumerConfig{Brokers: cfg.Kafka.Brokers, Group: "payments", Topics: saga.Topics, Sources: saga.Sources,
		Workers: cfg.Kafka.Workers, Policies: []kafka.Middleware{retries, kafka.DeadLetter(pub)}, Batch: in.Batch(routes)})
	if err != nil {
		return err
	}
	p.Add("kafka_consumer", consumer)
	// Calls left unsettled (a crash, an unknown outcome, a refund not
	// confirmed) are made again when due.
	p.Go(handlers.Recover)

	// Fault injection (/admin/faults, /admin/consumption), then every route.
	ops := httpapi.Ops{Faults: &faults.Injector{}, Consumption: faults.Consumption{Consumers: []faults.Pausable{consumer}, Log: tel.Logger}}
	if err := ops.Faults.Export(obs, ops.Consumption.Probe); err != nil {
		return err
	}
	httpapi.Routes(p.Server.Echo, p.Admin, store, ops)
	return nil
}

// pspGuards: one breaker and one retry budget for the provider, separate
// bulkheads for charges (fail fast when full: the saga compensates) and
// refunds (queue and wait: a refund must not be dropped).
func pspGuards(obs observe.Bundle, cfg settings) (pspclient.Guards, error) {
	br, err := breaker.New(obs, breaker.Settings{Name: "psp", Failures: uint32(cfg.BreakerFailures), OpenFor: cfg.BreakerOpenFor, // #nosec G115 -- BREAKER_FAILURES is checked to be within 1..1000
		IsFailure: pspclient.Transient})
	if err != nil {
		return pspclient.Guards{}, err
	}
	charges, err := bulkhead.New(obs, bulkhead.Settings{Name: "psp.charge", MaxConcurrent: cfg.ChargeConcurrency,
		MaxQueue: cfg.ChargeConcurrency, MaxWait: 100 * time.Millisecond})
	if err != nil {
		return pspclient.Guards{}, err
	}
	refunds, err := bulkhead.New(obs, bulkhead.Settings{Name: "psp.refund", MaxConcurrent: cfg.RefundConcurrency,
		MaxQueue: 1000, MaxWait: 5 * time.Second})
	if err != nil {
		return pspclient.Guards{}, err
	}
	budget, err := retry.NewBudget(obs, retry.BudgetSettings{Name: "psp"})
	if err != nil {
		return pspclient.Guards{}, err
	}
	policy := retry.Policy{Attempts: cfg.Attempts, Base: 50 * time.Millisecond, Budget: budget, Retryable: pspclient.Transient}
	return pspclient.Guards{
		Charge: guard.Guard{Bulkhead: charges, Retry: policy, Breaker: br},
		Refund: guard.Guard{Bulkhead: refunds, Retry: policy, Breaker: br},
	}, nil
}
