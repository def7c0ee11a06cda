// Command orders takes orders over HTTP and follows each through the saga
// to its terminal status. The order is event-sourced; every change is
// announced on orders.events through the outbox.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/example/sagasuite/platform/admission"
	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/election"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/process"
	"github.com/example/sagasuite/platform/projection"
	"github.com/example/sagasuite/platform/retry"
	"github.com/example/sagasuite/platform/telemetry"
	"github.com/example/sagasuite/platform/tlsfiles"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/cardseal"
	"github.com/example/sagasuite/services/orders/internal/httpapi"
	"github.com/example/sagasuite/services/orders/internal/inventory"
	"github.com/example/sagasuite/services/orders/internal/ordersdb"
	"github.com/example/sagasuite/services/orders/internal/readmodel"
	"github.com/example/sagasuite/services/orders/internal/saga"
	"github.com/example/sagasuite/services/orders/internal/watchdog"
	"github.com/example/sagasuite/services/orders/orderevents"
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
	Process          process.Config
	DB               postgres.Settings
	Kafka            kafka.Settings
	InboxRetention   time.Duration
	EtcdEndpoints    []string
	InventoryURL     string
	InventoryTimeout time.Duration
	PSPURL           string
	PSPCAFile        string
	PSPTimeout       time.Duration
	SagaTimeout      time.Duration
	SnapshotEvery    int
	ReadWait         time.Duration
	BreakerOpenFor   time.Duration
	PSPKey           cardseal.Pinning
	LeaderTTL        time.Duration
	PlaceTimeout     time.Duration
	SagaTarget       time.Duration
	OutboxBacklog    int64
}

// loadConfig reads the environment (README, "Configuration") and reports every problem at once.
func loadConfig(getenv func(string) string) (settings, error) {
	env := config.New(getenv)
	s := settings{
		Process:          process.FromEnv(env, "orders", version, ":8081"),
		DB:               postgres.FromEnv(env, "orders"),
		Kafka:            kafka.FromEnv(env),
		InboxRetention:   inbox.RetentionFromEnv(env),
		EtcdEndpoints:    env.List("ETCD_ENDPOINTS", "127.0.0.1:2379"),
		InventoryURL:     env.String("INVENTORY_URL", ""), // empty: find inventory through discovery
		LeaderTTL:        env.Duration("LEADER_TTL", 5*time.Second),
		InventoryTimeout: env.Duration("INVENTORY_TIMEOUT", 2*time.Second),
		PlaceTimeout:     env.Duration("PLACE_TIMEOUT", time.Second),
		// Sagas finishing later than this shrink the limit on sagas in
		// flight; well under the 5 s p99 objective, since the signal comes late.
		SagaTarget: env.Duration("SAGA_TARGET", time.Second),
		// While Kafka is away orders wait in the outbox, accepted, up to
		// this many rows; past it they are refused (503 overloaded).
		OutboxBacklog:  int64(env.Int("OUTBOX_BACKLOG_LIMIT", 5000, 100, 1_000_000)),
		PSPURL:         env.URL("PSP_URL", "http://127.0.0.1:8090", "http", "https"),
		PSPCAFile:      env.String("PSP_CA_FILE", ""),
		PSPTimeout:     env.Duration("PSP_TIMEOUT", 2*time.Second),
		SagaTimeout:    env.Duration("SAGA_TIMEOUT", 30*time.Second),
		SnapshotEvery:  env.Int("SNAPSHOT_EVERY", 100, 1, 1_000_000),
		ReadWait:       env.Duration("READ_WAIT", 2*time.Second),
		BreakerOpenFor: env.Duration("BREAKER_OPEN_FOR", 5*time.Second),
		PSPKey: cardseal.Pinning{Key: env.String("PSP_PUBLIC_KEY", ""),
			Fingerprints: strings.FieldsFunc(env.String("PSP_KEY_FINGERPRINTS", ""), func(r rune) bool { return r == ',' || r == ' ' })},
	}
	if s.InventoryURL != "" {
		env.URL("INVENTORY_URL", "", "http", "https")
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

// assemble adds to p every pattern orders uses, one block each: its
// database (event store, read model), Kafka with the outbox relay, the
// CQRS projector, load shedding, inventory found through discovery behind
// a bulkhead, breaker and retries, the card sealer, the saga consumer
// (inbox, retry, dead-letter), the watchdog singleton (etcd election with
// fencing), fault injection and the HTTP routes.
func assemble(ctx context.Context, p *process.Process, tel *telemetry.Telemetry, cfg settings) error {
	obs := tel.Bundle // where every component reports

	// PostgreSQL: orders' own database.
	db, err := postgres.Connect(ctx, cfg.DB, obs, postgres.Config{})
	if err != nil {
		return err
	}
	p.Add("postgres", db)
	// Kafka, and the outbox relay: events leave with the change that caused them.
	pub, err := kafka.Connect(ctx, cfg.Kafka, obs, append([]string{orderevents.Topic}, saga.Topics...)...)
	if err != nil {
		return err
	}
	p.Add("kafka", pub)
	relay, err := outbox.Setup(ctx, db.Pool, pub, obs, outbox.RelayConfig{})
	if err != nil {
		return err
	}
	p.Add("outbox", relay)

	// CQRS: the projector keeps order_summaries from the event store.
	projector, err := projection.New(db.Pool, readmodel.Projection{}, obs, projection.Config{Name: readmodel.Name, Table: readmodel.Table})
	if err != nil {
		return err
	}
	p.Add("projector", projector)

	// The write side (event store) and the read side (order_summaries),
	// each with its tables. Whoever commits wakes the projector of this
	// process; events are handed to the relay as their transactions commit.
	committed := projector.Wake
	repo, err := ordersdb.Setup(ctx, db.Pool, obs, ordersdb.Config{SnapshotEvery: int64(cfg.SnapshotEvery), Committed: committed, Outbox: relay.Write})
	if err != nil {
		return err
	}
	queries, err := readmodel.Setup(ctx, db.Pool)
	if err != nil {
		return err
	}

	// Load shedding: an adaptive limit on sagas in flight, fed by every
	// finished saga's duration.
	limiter, err := admission.New(obs, admission.Settings{Name: "sagas", Target: cfg.SagaTarget})
	if err != nil {
		return err
	}
	inflight, err := app.NewInFlight(queries, repo, obs, app.InFlightConfig{BacklogLimit: cfg.OutboxBacklog})
	if err != nil {
		return err
	}
	p.Go(inflight.Run)
	metrics, err := saga.NewMetrics(limiter.Observe, obs)
	if err != nil {
		return err
	}

	// etcd: service discovery of inventory, and the watchdog's election.
	etcd, err := discovery.Connect(cfg.EtcdEndpoints)
	if err != nil {
		return err
	}
	p.Add("etcd", etcd)

	// Inventory, found through discovery, behind its guards; the card
	// sealed to the provider's key.
	picker, err := inventoryPicker(p, etcd, obs, cfg)
	if err != nil {
		return err
	}
	quoteGuard, err := inventoryGuard(obs, cfg)
	if err != nil {
		return err
	}
	// PSP_CA_FILE: psp's certificate must come from this CA.
	pspTransport, err := tlsfiles.Transport(cfg.PSPCAFile)
	if err != nil {
		return err
	}
	sealer, err := cardseal.New(cfg.PSPURL, cfg.PSPTimeout, cfg.PSPKey, tel.Transport(pspTransport))
	if err != nil {
		return err
	}
	if !sealer.Pinned() {
		p.Log.Warn("the card-encryption key is not pinned: whoever answers for PSP_URL reads the cards sealed to its key; set PSP_KEY_FINGERPRINTS (psp logs its key's fingerprint)")
	}
	p.Go(sealer.Warm)

	// The use cases.
	orders, err := app.New(app.Deps{Store: repo, Idempotency: repo, History: repo, Reader: queries, Projection: projector,
		Quoter: inventory.New(picker, quoteGuard, tel.Transport(http.DefaultTransport)), Tokenizer: sealer,
		Limiter: limiter, InFlight: inflight}, obs, app.Config{ReadWait: cfg.ReadWait, PlaceTimeout: cfg.PlaceTimeout})
	if err != nil {
		return err
	}

	// The saga: outcomes from inventory and payments finish the order.
	in, err := inbox.Setup(ctx, db.Pool, obs, inbox.Config{Consumer: "orders", Retention: cfg.InboxRetention, Committed: committed})
	if err != nil {
		return err
	}
	p.Add("inbox", in)
	// Waiting messages are applied in batches (one transaction each); a
	// batch that fails is applied again one message at a time.
	routes := saga.New(repo, metrics).Routes()
	retries, err := kafka.Retry(obs, 5*time.Second)
	if err != nil {
		return err
	}
	consumer, err := kafka.NewConsumer(in.Handler(routes), obs, kafka.ConsumerConfig{Brokers: cfg.Kafka.Brokers, Group: "orders", Topics: saga.Topics, Sources: saga.Sources,
		Workers: cfg.Kafka.Workers, Policies: []kafka.Middleware{retries, kafka.DeadLetter(pub)}, Batch: in.Batch(routes)})
	if err != nil {
		return err
	}
	p.Add("kafka_consumer", consumer)

	// The watchdog cancels stalled sagas: a singleton, on the leader only.
	wd, err := watchdog.New(repo, queries, metrics, obs, watchdog.Config{Timeout: cfg.SagaTimeout})
	if err != nil {
		return err
	}
	watchdogJob, err := election.Setup(ctx, etcd.Client, db.Pool, wd.Scan, obs, election.Config{Name: watchdog.Job,
		InstanceID: cfg.Process.InstanceID, TTL: cfg.LeaderTTL, Every: wd.Interval()})
	if err != nil {
		return err
	}
	p.Add("watchdog", watchdogJob)

	// Fault injection (/admin/faults, /admin/consumption), then every route.
	ops := httpapi.Ops{Projections: httpapi.Projections{readmodel.Name: projector}, Faults: &faults.Injector{},
		Consumption: faults.Consumption{Consumers: []faults.Pausable{consumer}, Log: tel.Logger}, Watchdog: watchdogJob}
	if err := ops.Faults.Export(obs, ops.Consumption.Probe); err != nil {
		return err
	}
	httpapi.Routes(p.Server.Echo, p.Admin, orders, ops, p.Server.Draining())
	return nil
}

// inventoryPicker finds inventory instances: a fixed INVENTORY_URL, or
// the instances registered in etcd (by their sidecars).
func inventoryPicker(p *process.Process, etcd discovery.Etcd, obs observe.Bundle, cfg settings) (inventory.Picker, error) {
	if cfg.InventoryURL != "" {
		return discovery.NewStatic("inventory", cfg.InventoryURL), nil
	}
	r, err := discovery.NewResolver(etcd.Client, "inventory", obs)
	if err != nil {
		return nil, err
	}
	p.Go(r.Run)
	// Not ready before an inventory instance is known: POST /orders would
	// answer 503 inventory_unavailable. Once started, losing them all is
	// reported (degraded), not taken out of rotation: every replica of
	// orders would lose them alike, and a 503 with Retry-After says more.
	p.Startup("inventory_discovered", func(context.Context) error {
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
func inventoryGuard(obs observe.Bundle, cfg settings) (guard.Guard, error) {
	br, err := breaker.New(obs, breaker.Settings{Name: "inventory", OpenFor: cfg.BreakerOpenFor, IsFailure: inventory.Transient})
	if err != nil {
		return guard.Guard{}, err
	}
	bh, err := bulkhead.New(obs, bulkhead.Settings{Name: "inventory", MaxConcurrent: 32, MaxQueue: 32, MaxWait: 50 * time.Millisecond})
	if err != nil {
		return guard.Guard{}, err
	}
	budget, err := retry.NewBudget(obs, retry.BudgetSettings{Name: "inventory"})
	if err != nil {
		return guard.Guard{}, err
	}
	return guard.Guard{Bulkhead: bh, Breaker: br, Timeout: cfg.InventoryTimeout, Reserve: cfg.PlaceTimeout / 5,
		Retry: retry.Policy{Attempts: 2, Base: 20 * time.Millisecond, Budget: budget, Retryable: inventory.Transient}}, nil
}
