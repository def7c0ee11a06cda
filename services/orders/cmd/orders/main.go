// Command orders takes orders over HTTP and follows each through the saga
// to its terminal status. The order is event-sourced; every change is
// announced on orders.events through the outbox.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/example/sagasuite/platform/admission"
	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/chassis"
	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/election"
	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/projection"
	"github.com/example/sagasuite/platform/retry"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/httpapi"
	"github.com/example/sagasuite/services/orders/internal/inventory"
	ordpg "github.com/example/sagasuite/services/orders/internal/postgres"
	"github.com/example/sagasuite/services/orders/internal/psp"
	"github.com/example/sagasuite/services/orders/internal/readmodel"
	"github.com/example/sagasuite/services/orders/internal/saga"
	"github.com/example/sagasuite/services/orders/internal/watchdog"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

type settings struct {
	chassis.Config
	InventoryURL     string
	InventoryTimeout time.Duration
	PSPURL           string
	PSPTimeout       time.Duration
	SagaTimeout      time.Duration
	SnapshotEvery    int
	ReadWait         time.Duration
	BreakerOpenFor   time.Duration
	PSPPublicKey     string
	LeaderTTL        time.Duration
	PlaceTimeout     time.Duration
	SagaTarget       time.Duration
}

// loadConfig reads the environment (CONTRACT.md) and reports every problem at once.
func loadConfig(getenv func(string) string) (settings, error) {
	env := config.New(getenv)
	s := settings{
		Config:           chassis.FromEnv(env, "orders", ":8081"),
		InventoryURL:     env.String("INVENTORY_URL", ""), // empty: find inventory through discovery
		LeaderTTL:        env.Duration("LEADER_TTL", 5*time.Second),
		InventoryTimeout: env.Duration("INVENTORY_TIMEOUT", 2*time.Second),
		PlaceTimeout:     env.Duration("PLACE_TIMEOUT", time.Second),
		// Sagas finishing later than this shrink the limit on sagas in
		// flight; well under the 5 s p99 objective, since the signal comes late.
		SagaTarget:     env.Duration("SAGA_TARGET", time.Second),
		PSPURL:         env.URL("PSP_URL", "http://127.0.0.1:8090", "http", "https"),
		PSPTimeout:     env.Duration("PSP_TIMEOUT", 2*time.Second),
		SagaTimeout:    env.Duration("SAGA_TIMEOUT", 30*time.Second),
		SnapshotEvery:  env.Int("SNAPSHOT_EVERY", 100, 1, 1_000_000),
		ReadWait:       env.Duration("READ_WAIT", 2*time.Second),
		BreakerOpenFor: env.Duration("BREAKER_OPEN_FOR", 5*time.Second),
		PSPPublicKey:   env.String("PSP_PUBLIC_KEY", ""),
	}
	if s.InventoryURL != "" {
		env.URL("INVENTORY_URL", "", "http", "https")
	}
	s.Version, s.Migrations = version, ordpg.Migrations()
	s.Topics = []string{saga.OrdersTopic, saga.InventoryTopic, saga.PaymentsTopic}
	return s, env.Err()
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return chassis.Run(ctx, cfg.Config, getenv, stdout, func(svc *chassis.Service) error { return wire(ctx, svc, cfg) })
}

// wire adds orders' own parts to the chassis.
func wire(ctx context.Context, svc *chassis.Service, cfg settings) error {
	for _, m := range []struct {
		set  string
		fsys fs.FS
	}{{"eventstore", eventstore.Migrations()}, {"projection", projection.Migrations()}, {"election", election.Migrations()}} {
		if err := postgres.Migrate(ctx, svc.Pool, m.set, m.fsys); err != nil {
			return err
		}
	}
	meter := svc.Tel.MeterProvider.Meter("github.com/example/sagasuite/services/orders")
	repo, err := ordpg.New(svc.Pool, ordpg.Config{SnapshotEvery: int64(cfg.SnapshotEvery), MeterProvider: svc.Tel.MeterProvider})
	if err != nil {
		return err
	}
	// Load shedding: an adaptive limit on sagas in flight, fed by every
	// finished saga's duration.
	limiter, err := admission.New(admission.Settings{Name: "sagas", Target: cfg.SagaTarget, MeterProvider: svc.Tel.MeterProvider})
	if err != nil {
		return err
	}
	inflight, err := app.NewInFlight(repo, meter)
	if err != nil {
		return err
	}
	svc.Go(func(ctx context.Context) error { return inflight.Run(ctx, 100*time.Millisecond, svc.Log) })
	metrics, err := saga.NewMetrics(meter, limiter.Observe)
	if err != nil {
		return err
	}
	// The query side: order_summaries, kept by the projector.
	projector, err := projection.New(svc.Pool, readmodel.Projection{}, projection.Config{
		Name: readmodel.Name, Table: readmodel.Table, Logger: svc.Log, MeterProvider: svc.Tel.MeterProvider})
	if err != nil {
		return err
	}
	svc.Go(projector.Run)
	quoteGuard, err := inventoryGuard(svc, cfg)
	if err != nil {
		return err
	}
	sealer, err := psp.New(cfg.PSPURL, cfg.PSPTimeout, cfg.PSPPublicKey)
	if err != nil {
		return err
	}
	svc.Go(sealer.Warm)
	picker, err := inventoryPicker(svc, cfg)
	if err != nil {
		return err
	}
	orders, err := app.New(app.Deps{Repo: repo, Reader: repo, Projection: projector,
		Quoter: inventory.New(picker, quoteGuard), Tokenizer: sealer,
		Meter: meter, ReadWait: cfg.ReadWait, PlaceTimeout: cfg.PlaceTimeout, Limiter: limiter, InFlight: inflight})
	if err != nil {
		return err
	}
	if err := svc.Consume([]string{saga.InventoryTopic, saga.PaymentsTopic}, saga.New(repo, metrics).Routes()); err != nil {
		return err
	}
	wd := watchdog.New(repo, metrics, watchdog.Config{Timeout: cfg.SagaTimeout}, svc.Log, svc.Tel.TracerProvider)
	if err := svc.Elect(watchdog.Job, cfg.LeaderTTL, wd.Run); err != nil { // a singleton: on the leader only
		return err
	}
	httpapi.Routes(svc.Server.Echo, svc.Admin, orders, httpapi.Projections{readmodel.Name: projector}, svc.Server.Draining())
	return nil
}

// inventoryPicker finds inventory instances: a fixed INVENTORY_URL, or
// the instances registered in etcd (by their sidecars).
func inventoryPicker(svc *chassis.Service, cfg settings) (inventory.Picker, error) {
	if cfg.InventoryURL != "" {
		return discovery.NewStatic("inventory", cfg.InventoryURL), nil
	}
	if svc.Etcd == nil {
		return nil, fmt.Errorf("INVENTORY_URL or ETCD_ENDPOINTS is needed to reach inventory")
	}
	r, err := discovery.NewResolver(svc.Etcd, "inventory", svc.Tel.MeterProvider)
	if err != nil {
		return nil, err
	}
	svc.Go(r.Run)
	// Not ready before an inventory instance is known: POST /orders would
	// answer 503 inventory_unavailable.
	svc.AddReady("inventory_discovered", func(context.Context) error {
		if len(r.Instances()) == 0 {
			return errors.New("no inventory instance discovered yet")
		}
		return nil
	})
	return r, nil
}

// inventoryGuard bounds the quote calls: at most 32 at once (a few more
// wait 50 ms), one retry within a 10% budget, and a breaker that opens
// after 5 failures in a row. Each attempt takes at most INVENTORY_TIMEOUT
// and its share of what is left of POST /orders' PLACE_TIMEOUT, keeping a
// fifth of that budget for storing the order.
func inventoryGuard(svc *chassis.Service, cfg settings) (guard.Guard, error) {
	mp := svc.Tel.MeterProvider
	br, err := breaker.New(breaker.Settings{Name: "inventory", OpenFor: cfg.BreakerOpenFor, IsFailure: inventory.Transient,
		Logger: svc.Log, MeterProvider: mp})
	if err != nil {
		return guard.Guard{}, err
	}
	bh, err := bulkhead.New(bulkhead.Settings{Name: "inventory", MaxConcurrent: 32, MaxQueue: 32, MaxWait: 50 * time.Millisecond, MeterProvider: mp})
	if err != nil {
		return guard.Guard{}, err
	}
	budget, err := retry.NewBudget(retry.BudgetSettings{Name: "inventory", MeterProvider: mp})
	if err != nil {
		return guard.Guard{}, err
	}
	return guard.Guard{Bulkhead: bh, Breaker: br, Timeout: cfg.InventoryTimeout, Reserve: cfg.PlaceTimeout / 5,
		Retry: retry.Policy{Attempts: 2, Base: 20 * time.Millisecond, Budget: budget, Retryable: inventory.Transient}}, nil
}
