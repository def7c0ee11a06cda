// Package chassis wires what every service of the suite has in common (the
// microservice-chassis pattern): telemetry, its own PostgreSQL database
// with migrations, a Kafka publisher with the outbox relay, the HTTP server
// with health, readiness and metrics, and a Run that starts and stops them
// together. Each service's run function then shows only what is its own:
// its routes, its consumers and its background jobs.
//
// Everything here is plain wiring of the other platform packages; a
// service that needs something different can do the same steps by hand.
package chassis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel"
	"golang.org/x/sync/errgroup"

	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/election"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/telemetry"
)

// Config describes one service process.
type Config struct {
	Name       string // service name: telemetry, consumer group, default database
	Version    string
	InstanceID string
	LogLevel   slog.Level
	HTTPAddr   string // where Run serves
	AdminToken string // guards /admin routes
	// AdminAddr, when set, serves the /admin routes (faults, consumption,
	// pprof, the service's own) on a listener of their own, e.g.
	// 127.0.0.1:9101, and not on HTTPAddr. Empty: on HTTPAddr.
	AdminAddr string

	// DatabaseURL is the server's admin URL; empty means no database.
	DatabaseURL  string
	DatabaseName string // defaults to Name
	// Migrations are the service's own schema; the outbox and inbox
	// tables are added when there is a database.
	Migrations fs.FS

	// EtcdEndpoints empty means no etcd (no discovery, no elections).
	EtcdEndpoints []string

	// KafkaBrokers empty means no Kafka.
	KafkaBrokers    []string
	KafkaPartitions int      // for topics this process creates; 0 means 6
	Topics          []string // created (with their .dlq) at start

	// StartTimeout bounds the wait for PostgreSQL and Kafka at start; 0
	// means 60 s.
	StartTimeout time.Duration
	// DBMaxConns caps the connection pool; 0 means 20 (handlers may hold
	// a transaction across a slow dependency call).
	DBMaxConns int
	// ConsumerWorkers handle messages in parallel, in order per key; 0 means 8.
	ConsumerWorkers int
	// InboxRetention is how long applied message IDs are kept for
	// deduplication; 0 means 7 days (Kafka's default retention).
	InboxRetention time.Duration
	// StopTimeout bounds the whole shutdown once ctx ends: draining HTTP,
	// stopping every component and closing what Start opened; 0 means 8 s.
	// Past it Run returns an error, so the process exits even when a
	// dependency (etcd, Kafka, PostgreSQL) is already gone and a teardown
	// call would wait on it.
	StopTimeout time.Duration
}

// Service is a started chassis. Close releases what Start opened; Run
// serves until the context ends.
type Service struct {
	Tel       *telemetry.Telemetry
	Log       *slog.Logger
	Pool      *pgxpool.Pool    // nil without a database
	Publisher *kafka.Publisher // nil without Kafka
	Etcd      *clientv3.Client // nil without etcd
	Observers kafka.Observers  // for consumers
	Server    *httpserver.Server
	// Admin is the token-guarded /admin route group: on Server, or on a
	// listener of its own when Config.AdminAddr is set.
	Admin       *echo.Group
	adminServer *httpserver.Server
	// Faults are injected into the business endpoints (PUT /admin/faults).
	Faults *faults.Injector

	cfg         Config
	ready       map[string]httpserver.Check
	consumers   []*kafka.Consumer
	leaderRoute bool
	runners     []func(context.Context) error
	closers     []func()
}

// Start sets up telemetry (and the OTel globals, for libraries that only
// use them), opens and migrates the database, creates topics and the
// publisher, and builds the HTTP server. On error it releases what it had
// opened.
func Start(ctx context.Context, cfg Config, getenv func(string) string, stdout io.Writer) (_ *Service, err error) {
	if cfg.DatabaseName == "" {
		cfg.DatabaseName = cfg.Name
	}
	if cfg.KafkaPartitions <= 0 {
		cfg.KafkaPartitions = 6
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.DBMaxConns <= 0 {
		cfg.DBMaxConns = 20
	}
	if cfg.ConsumerWorkers <= 0 {
		cfg.ConsumerWorkers = 8
	}
	if cfg.InboxRetention <= 0 {
		cfg.InboxRetention = 7 * 24 * time.Hour
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 8 * time.Second
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: cfg.Name, ServiceVersion: cfg.Version,
		InstanceID: cfg.InstanceID, LogLevel: cfg.LogLevel}, getenv, stdout)
	if err != nil {
		return nil, err
	}
	otel.SetTracerProvider(tel.TracerProvider)
	otel.SetMeterProvider(tel.MeterProvider)
	otel.SetTextMapPropagator(tel.Propagator)
	s := &Service{Tel: tel, Log: tel.Logger, cfg: cfg,
		Observers: kafka.Observers{Logger: tel.Logger, TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider, Propagator: tel.Propagator}}
	s.closers = append(s.closers, func() {
		// Bounded: an exporter with no collector must not hold up exit.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			tel.Logger.Warn("telemetry shutdown", "error", err)
		}
	})
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	ready := map[string]httpserver.Check{}

	// Dependencies may still be starting (make dev, compose): wait for them, bounded.
	wctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if cfg.DatabaseURL != "" {
		err = s.retry(wctx, "postgres", func() error {
			s.Pool, err = postgres.Open(wctx, cfg.DatabaseURL, cfg.DatabaseName, postgres.Config{
				TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider, MaxConns: int32(cfg.DBMaxConns)}) // #nosec G115 -- DB_MAX_CONNS is checked to be within 2..1000
			return err
		})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.Pool.Close)
		sets := []struct {
			name string
			fsys fs.FS
		}{{"outbox", outbox.Migrations()}, {"inbox", inbox.Migrations()}, {cfg.Name, cfg.Migrations}}
		for _, set := range sets {
			if set.fsys == nil {
				continue
			}
			if err = postgres.Migrate(ctx, s.Pool, set.name, set.fsys); err != nil {
				return nil, err
			}
		}
		ready["postgres"] = s.Pool.Ping
	}

	if len(cfg.KafkaBrokers) > 0 {
		if err = s.retry(wctx, "kafka", func() error {
			return kafka.EnsureTopics(wctx, cfg.KafkaBrokers, cfg.KafkaPartitions, cfg.Topics...)
		}); err != nil {
			return nil, err
		}
		if s.Publisher, err = kafka.NewPublisher(kafka.PublisherConfig{Brokers: cfg.KafkaBrokers, Observers: s.Observers}); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = s.Publisher.Close() })
		ready["kafka"] = func(ctx context.Context) error { return kafka.Ping(ctx, cfg.KafkaBrokers) }
	}
	if len(cfg.EtcdEndpoints) > 0 {
		if s.Etcd, err = discovery.Dial(cfg.EtcdEndpoints); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = s.Etcd.Close() })
		ready["etcd"] = func(ctx context.Context) error { return discovery.Ping(ctx, s.Etcd) }
	}
	if s.Pool != nil && s.Publisher != nil {
		relay, err := outbox.NewRelay(s.Pool, s.Publisher, outbox.RelayConfig{Logger: tel.Logger, MeterProvider: tel.MeterProvider,
			TracerProvider: tel.TracerProvider})
		if err != nil {
			return nil, err
		}
		s.Go(relay.Run)
	}

	s.ready = ready
	s.Server = httpserver.New(httpserver.Config{
		Logger: tel.Logger, TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider,
		Propagator: tel.Propagator, Metrics: tel.MetricsHandler, Ready: ready, ServerName: cfg.Name,
		ShutdownTimeout: cfg.StopTimeout / 2, // the rest is for components and closers
	})
	s.Admin = s.Server.Echo.Group("/admin", httpserver.RequireToken(cfg.AdminToken))
	if cfg.AdminAddr != "" {
		s.adminServer = httpserver.New(httpserver.Config{ServerName: cfg.Name + "-admin",
			Logger: tel.Logger, TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider,
			Propagator: tel.Propagator, ShutdownTimeout: cfg.StopTimeout / 2})
		s.Admin = s.adminServer.Echo.Group("/admin", httpserver.RequireToken(cfg.AdminToken))
	}
	s.Faults = &faults.Injector{}
	if err = s.Faults.Export(tel.MeterProvider, func() (string, bool) {
		return "consumption_paused", len(s.consumers) > 0 && s.consumers[0].Paused()
	}); err != nil {
		return nil, err
	}
	s.Server.Echo.Use(s.Faults.Middleware)
	s.Faults.Routes(s.Admin)
	s.Admin.GET("/consumption", s.consumption)
	s.Admin.PUT("/consumption", s.consumption)
	// On-demand profiles beside the continuous ones: go tool pprof with the admin token.
	s.Admin.GET("/debug/pprof/*", echo.WrapHandler(http.StripPrefix("/admin", http.HandlerFunc(pprof.Index))))
	s.Admin.GET("/debug/pprof/profile", echo.WrapHandler(http.HandlerFunc(pprof.Profile)))
	return s, nil
}

type consumptionState struct {
	Paused *bool `json:"paused"`
}

// consumption reads (GET) or sets (PUT {"paused": true}) whether this
// process takes new messages from Kafka: a stuck queue on demand.
func (s *Service) consumption(c echo.Context) error {
	if c.Request().Method == http.MethodPut {
		var req consumptionState
		if err := httpserver.Bind(c, &req); err != nil {
			return err
		}
		if req.Paused == nil {
			return httpserver.Invalid(map[string]string{"paused": "required, true or false"})
		}
		for _, k := range s.consumers {
			if *req.Paused {
				k.Pause()
			} else {
				k.Resume()
			}
		}
		s.Log.Warn("kafka consumption changed by an operator", "paused", *req.Paused)
	}
	paused := len(s.consumers) > 0 && s.consumers[0].Paused()
	return c.JSON(http.StatusOK, consumptionState{Paused: &paused})
}

// retry calls f until it succeeds or ctx ends, logging each failure.
func (s *Service) retry(ctx context.Context, what string, f func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		s.Log.Warn("waiting for "+what, "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// Run is a service's whole life: Start, let wire add the service's own
// parts (routes, consumers, jobs), then serve until ctx ends. What Start
// opened is closed whichever step fails.
func Run(ctx context.Context, cfg Config, getenv func(string) string, stdout io.Writer, wire func(*Service) error) error {
	svc, err := Start(ctx, cfg, getenv, stdout)
	if err != nil {
		return err
	}
	if err := wire(svc); err != nil {
		svc.Close()
		return err
	}
	return svc.Run(ctx)
}

// Consume adds a consumer group (named after the service) over topics,
// whose messages are applied once each through the inbox and routed by
// event type.
func (s *Service) Consume(topics []string, routes inbox.Routes) error {
	if s.Pool == nil || s.Publisher == nil {
		return errors.New("chassis: consuming needs a database and Kafka")
	}
	c, err := kafka.NewConsumer(kafka.ConsumerConfig{
		Brokers: s.cfg.KafkaBrokers, Group: s.cfg.Name, Topics: topics, DLQ: s.Publisher, Observers: s.Observers,
		Workers: s.cfg.ConsumerWorkers,
	}, inbox.Handler(s.Pool, s.cfg.Name, inbox.Route(routes), s.Tel.MeterProvider))
	if err != nil {
		return err
	}
	if len(s.consumers) == 0 {
		s.Go(s.pruneInbox)
	}
	s.consumers = append(s.consumers, c)
	s.Go(c.Run)
	// Ready only once the group has given us our partitions: before that,
	// a message sent would wait for the rebalance.
	s.AddReady("kafka_consumer_"+strconv.Itoa(len(s.consumers)), c.Ready)
	return nil
}

// AddReady adds a check to /readyz: the process is ready only when it
// can serve within its objective, not merely when it is up. Call it
// while wiring, before Run.
func (s *Service) AddReady(name string, check httpserver.Check) { s.ready[name] = check }

// pruneInbox forgets applied message IDs older than InboxRetention, hourly.
// Replicas may prune at once: deleting twice is harmless.
func (s *Service) pruneInbox(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := inbox.Prune(ctx, s.Pool, time.Now().Add(-s.cfg.InboxRetention))
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.Log.WarnContext(ctx, "prune inbox", "error", err)
		case n > 0:
			s.Log.InfoContext(ctx, "inbox pruned", "ids", n, "older_than", s.cfg.InboxRetention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Elect runs job as a singleton: only while this instance leads the
// election name (etcd), with the term's fencing token; without etcd it
// runs job directly with token 0. It serves GET /admin/leader for the
// first election of the process.
func (s *Service) Elect(name string, ttl time.Duration, job func(ctx context.Context, token int64) error) error {
	if s.Etcd == nil {
		s.Go(func(ctx context.Context) error { return job(ctx, 0) })
		return nil
	}
	e, err := election.New(s.Etcd, election.Config{Name: name, InstanceID: s.cfg.InstanceID, TTL: ttl,
		Logger: s.Log, MeterProvider: s.Tel.MeterProvider})
	if err != nil {
		return err
	}
	s.Go(func(ctx context.Context) error { return e.Run(ctx, job) })
	if !s.leaderRoute {
		s.leaderRoute = true
		s.Admin.GET("/leader", func(c echo.Context) error {
			st, err := e.Status(c.Request().Context())
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, st)
		})
	}
	return nil
}

// Go adds a component to run beside the server; it must return when its
// context ends.
func (s *Service) Go(run func(context.Context) error) { s.runners = append(s.runners, run) }

// Run serves HTTP on Config.HTTPAddr and runs every component until ctx
// ends or one fails, then stops them all, waits for them and closes what
// Start opened, all within Config.StopTimeout of the stop.
func (s *Service) Run(ctx context.Context) error {
	addr := s.cfg.HTTPAddr
	s.Log.Info(s.cfg.Name+" starting", "addr", addr, "version", s.cfg.Version, "instance", s.cfg.InstanceID)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Server.Run(gctx, addr) })
	if s.adminServer != nil {
		g.Go(func() error { return s.adminServer.Run(gctx, s.cfg.AdminAddr) })
	}
	for _, run := range s.runners {
		g.Go(func() error { return run(gctx) })
	}
	done := make(chan error, 1)
	go func() {
		err := g.Wait()
		s.Close()
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-gctx.Done():
		select {
		case err = <-done:
		case <-time.After(s.cfg.StopTimeout):
			err = fmt.Errorf("stop: still stopping after %v, exiting anyway", s.cfg.StopTimeout)
		}
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", s.cfg.Name, err)
	}
	s.Log.Info(s.cfg.Name+" stopped", "error", err)
	return err
}

// Close releases everything Start opened, newest first. Run calls it.
func (s *Service) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}
