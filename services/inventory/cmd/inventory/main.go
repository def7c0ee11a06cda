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

	"github.com/example/sagasuite/platform/chassis"
	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/election"
	platformpg "github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/internal/httpapi"
	"github.com/example/sagasuite/services/inventory/internal/postgres"
	"github.com/example/sagasuite/services/inventory/internal/saga"
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
	chassis.Config
	SeedStock      int64
	ReservationTTL time.Duration
	ExpiryInterval time.Duration
	LeaderTTL      time.Duration
}

// loadConfig reads the environment (CONTRACT.md) and reports every problem at once.
func loadConfig(getenv func(string) string) (settings, error) {
	env := config.New(getenv)
	s := settings{
		Config:    chassis.FromEnv(env, "inventory", ":8083"),
		SeedStock: int64(env.Int("SEED_STOCK", 1_000_000, 0, 1_000_000_000)),
		// Well above orders' SAGA_TIMEOUT: the watchdog cancels first.
		ReservationTTL: env.Duration("RESERVATION_TTL", 5*time.Minute),
		ExpiryInterval: env.Duration("EXPIRY_INTERVAL", 10*time.Second),
		LeaderTTL:      env.Duration("LEADER_TTL", 5*time.Second),
	}
	s.Version, s.Migrations = version, postgres.Migrations()
	s.Topics = []string{saga.OrdersTopic, saga.PaymentsTopic, saga.InventoryTopic}
	return s, env.Err()
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return chassis.Run(ctx, cfg.Config, getenv, stdout, func(svc *chassis.Service) error { return wire(ctx, svc, cfg) })
}

// wire adds inventory's own parts to the chassis.
func wire(ctx context.Context, svc *chassis.Service, cfg settings) error {
	if err := platformpg.Migrate(ctx, svc.Pool, "election", election.Migrations()); err != nil {
		return err
	}
	store := postgres.New(svc.Pool)
	seeded, err := store.SeedIfEmpty(ctx, catalog.Seed(cfg.SeedStock))
	if err != nil {
		return err
	}
	if seeded {
		svc.Log.Info("catalogue seeded", "products", 100, "stock_each", cfg.SeedStock)
	}
	handlers := saga.New(store, svc.Tel.TracerProvider)
	if err := svc.Consume([]string{saga.OrdersTopic, saga.PaymentsTopic}, handlers.Routes()); err != nil {
		return err
	}
	expiry, err := saga.NewExpiry(store, cfg.ReservationTTL, cfg.ExpiryInterval, svc.Log, svc.Tel.TracerProvider,
		svc.Tel.MeterProvider.Meter("github.com/example/sagasuite/services/inventory"))
	if err != nil {
		return err
	}
	if err := svc.Elect(saga.ExpiryJob, cfg.LeaderTTL, expiry.Run); err != nil { // a singleton: on the leader only
		return err
	}
	httpapi.Routes(svc.Server.Echo, svc.Admin, store)
	return nil
}
