// Command inventory owns products and stock. It answers the catalogue over
// HTTP and takes part in the order saga over Kafka: reserve on
// orders.placed, commit on payments.authorized, release on failure or
// cancellation.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/election"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/process"
	"github.com/example/sagasuite/platform/telemetry"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/internal/httpapi"
	"github.com/example/sagasuite/services/inventory/internal/inventorydb"
	"github.com/example/sagasuite/services/inventory/internal/saga"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "inventory:", err)
		os.Exit(1)
	}
}

type settings struct {
	Process        process.Config
	DB             postgres.Settings
	Kafka          kafka.Settings
	InboxRetention time.Duration
	EtcdEndpoints  []string
	SeedStock      int64
	ReservationTTL time.Duration
	ExpiryInterval time.Duration
	LeaderTTL      time.Duration
}

// loadConfig reads the environment (README, "Configuration") and reports every problem at once.
func loadConfig(getenv func(string) string) (settings, error) {
	env := config.New(getenv)
	s := settings{
		Process:        process.FromEnv(env, "inventory", version, ":8083"),
		DB:             postgres.FromEnv(env, "inventory"),
		Kafka:          kafka.FromEnv(env),
		InboxRetention: inbox.RetentionFromEnv(env),
		EtcdEndpoints:  env.List("ETCD_ENDPOINTS", "127.0.0.1:2379"),
		SeedStock:      int64(env.Int("SEED_STOCK", 1_000_000, 0, 1_000_000_000)),
		// Well above orders' SAGA_TIMEOUT: the watchdog cancels first.
		ReservationTTL: env.Duration("RESERVATION_TTL", 5*time.Minute),
		ExpiryInterval: env.Duration("EXPIRY_INTERVAL", 10*time.Second),
		LeaderTTL:      env.Duration("LEADER_TTL", 5*time.Second),
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

// assemble adds to p every pattern inventory uses, one block each: its
// database (seeded), Kafka with the outbox relay, the saga consumer
// (inbox, retry, dead-letter), the reservation-expiry singleton (etcd
// election with fencing), fault injection and the HTTP routes. Orders
// finds inventory through the sidecar's registration, so inventory itself
// does not use discovery.
func assemble(ctx context.Context, p *process.Process, tel *telemetry.Telemetry, cfg settings) error {
	obs := tel.Bundle // where every component reports

	// PostgreSQL: inventory's own database and tables, with the catalogue.
	db, err := postgres.Connect(ctx, cfg.DB, obs, postgres.Config{})
	if err != nil {
		return err
	}
	p.Add("postgres", db)
	store, err := inventorydb.Setup(ctx, db.Pool)
	if err != nil {
		return err
	}
	if seeded, err := store.SeedIfEmpty(ctx, catalog.Seed(cfg.SeedStock)); err != nil {
		return err
	} else if seeded {
		p.Log.Info("catalogue seeded", "products", 100, "stock_each", cfg.SeedStock)
	}

	// Kafka, and the outbox relay: events leave with the change that caused them.
	pub, err := kafka.Connect(ctx, cfg.Kafka, obs, append([]string{inventoryevents.Topic}, saga.Topics...)...)
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

	// The saga: reserve, commit, release.
	in, err := inbox.Setup(ctx, db.Pool, obs, inbox.Config{Consumer: "inventory", Retention: cfg.InboxRetention})
	if err != nil {
		return err
	}
	p.Add("inbox", in)
	// A batch of messages in one transaction, as orders and payments, but
	// with its locks taken first and in one order (handlers.Lock): a
	// reservation locks product rows every order shares, and batches that
	// locked them message by message deadlocked each other (64 failed
	// batches a minute at 250 orders/s).
	handlers, err := saga.New(store, obs)
	if err != nil {
		return err
	}
	retries, err := kafka.Retry(obs, 5*time.Second)
	if err != nil {
		return err
	}
	routes := handlers.Routes()
	consumer, err := kafka.NewConsumer(in.Handler(routes), obs, kafka.ConsumerConfig{Brokers: cfg.Kafka.Brokers, Group: "inventory",
		Topics: saga.Topics, Sources: saga.Sources, Workers: cfg.Kafka.Workers, Policies: []kafka.Middleware{retries, kafka.DeadLetter(pub)},
		Batch: in.BatchLocking(routes, handlers.Lock)})
	if err != nil {
		return err
	}
	p.Add("kafka_consumer", consumer)

	// Leader election (etcd) for the reservation-expiry job: one replica
	// runs it, its writes fenced.
	etcd, err := discovery.Connect(cfg.EtcdEndpoints)
	if err != nil {
		return err
	}
	p.Add("etcd", etcd)
	expiry, err := saga.NewExpiry(store, obs, saga.ExpiryConfig{TTL: cfg.ReservationTTL, Interval: cfg.ExpiryInterval})
	if err != nil {
		return err
	}
	expiryJob, err := election.Setup(ctx, etcd.Client, db.Pool, expiry.Scan, obs, election.Config{Name: saga.ExpiryJob,
		InstanceID: cfg.Process.InstanceID, TTL: cfg.LeaderTTL, Every: expiry.Interval()})
	if err != nil {
		return err
	}
	p.Add("expiry", expiryJob)

	// Fault injection (/admin/faults, /admin/consumption), then every route.
	ops := httpapi.Ops{Faults: &faults.Injector{}, Consumption: faults.Consumption{Consumers: []faults.Pausable{consumer}, Log: tel.Logger},
		Expiry: expiryJob}
	if err := ops.Faults.Export(obs, ops.Consumption.Probe); err != nil {
		return err
	}
	httpapi.Routes(p.Server.Echo, p.Admin, store, ops)
	return nil
}
