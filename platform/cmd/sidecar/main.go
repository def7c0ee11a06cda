// Command sidecar runs beside one service instance (compose:
// network_mode: service:<name>; make dev: one per instance) and registers
// it in etcd only while its /readyz answers 200 (see package sidecar). It
// serves its own /healthz and /metrics.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/process"
	"github.com/example/sagasuite/platform/sidecar"
	"github.com/example/sagasuite/platform/telemetry"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sidecar:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := config.New(getenv)
	service := env.Required("SERVICE_NAME")
	addr := env.URL("SERVICE_ADDR", "", "http", "https") // what callers use, e.g. http://127.0.0.1:8083
	cfg := process.FromEnv(env, "sidecar", version, ":9000")
	host, _ := os.Hostname()
	cfg.InstanceID = env.String("INSTANCE_ID", service+"-"+host) // the instance it registers
	etcdEndpoints := env.List("ETCD_ENDPOINTS", "127.0.0.1:2379")
	readyURL := env.URL("READY_URL", strings.TrimSuffix(addr, "/")+"/readyz", "http", "https")
	ttl := env.Duration("LEASE_TTL", 5*time.Second)
	interval := env.Duration("CHECK_INTERVAL", time.Second)
	failures := env.Int("FAILURE_THRESHOLD", 3, 1, 100) // failed checks in a row that deregister
	if err := env.Err(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tel, err := telemetry.Setup(ctx, cfg.Telemetry(), getenv, stdout)
	if err != nil {
		return err
	}
	p, err := process.New(tel, cfg)
	if err != nil {
		return err
	}
	etcd, err := discovery.Connect(etcdEndpoints)
	if err != nil {
		p.Close()
		return err
	}
	p.Add("etcd", etcd)
	p.Go(func(ctx context.Context) error {
		return sidecar.Run(ctx, etcd.Client, tel.Bundle, sidecar.Config{
			Instance: discovery.Instance{Service: service, ID: cfg.InstanceID, Addr: addr, Version: version, StartedAt: time.Now().UTC()},
			ReadyURL: readyURL, TTL: ttl, Interval: interval, Failures: failures,
		})
	})
	httpserver.PprofRoutes(p.Admin) // GET /admin/debug/pprof/…: the sidecar's only admin route
	return p.Run(ctx)
}
