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

	"github.com/example/sagasuite/platform/chassis"
	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/sidecar"
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
	host, _ := os.Hostname()
	cfg := chassis.Config{
		Name:          "sidecar",
		Version:       version,
		InstanceID:    env.String("INSTANCE_ID", service+"-"+host),
		LogLevel:      env.LogLevel("LOG_LEVEL"),
		HTTPAddr:      env.Addr("HTTP_ADDR", ":9000"),
		AdminToken:    env.Secret("ADMIN_TOKEN", "dev-admin-token"),
		AdminAddr:     env.OptionalAddr("ADMIN_ADDR"),
		EtcdEndpoints: env.List("ETCD_ENDPOINTS", "127.0.0.1:2379"),
	}
	readyURL := env.URL("READY_URL", strings.TrimSuffix(addr, "/")+"/readyz", "http", "https")
	ttl := env.Duration("LEASE_TTL", 5*time.Second)
	interval := env.Duration("CHECK_INTERVAL", time.Second)
	if err := env.Err(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return chassis.Run(ctx, cfg, getenv, stdout, func(svc *chassis.Service) error {
		svc.Go(func(ctx context.Context) error {
			return sidecar.Run(ctx, sidecar.Config{
				Instance: discovery.Instance{Service: service, ID: cfg.InstanceID, Addr: addr, Version: version, StartedAt: time.Now().UTC()},
				ReadyURL: readyURL, TTL: ttl, Interval: interval, Client: svc.Etcd, Logger: svc.Log,
				Meter: svc.Tel.MeterProvider.Meter("github.com/example/sagasuite/platform/sidecar"),
			})
		})
		return nil
	})
}
