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

	"github.com/example/sagasuite/platform/chassis"
	"github.com/example/sagasuite/platform/config"
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
	PSPURL     string
	PSPTimeout time.Duration
	Attempts   int
}

// loadConfig reads the environment (CONTRACT.md) and reports every problem at once.
func loadConfig(getenv func(string) string) (settings, error) {
	env := config.New(getenv)
	s := settings{
		Config:     chassis.FromEnv(env, "payments", ":8082"),
		PSPURL:     env.URL("PSP_URL", "http://127.0.0.1:8090", "http", "https"),
		PSPTimeout: env.Duration("PSP_TIMEOUT", 2*time.Second),
		Attempts:   env.Int("PSP_CHARGE_ATTEMPTS", 3, 1, 10),
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
	svc, err := chassis.Start(ctx, cfg.Config, getenv, stdout)
	if err != nil {
		return err
	}
	if err := wire(svc, cfg); err != nil {
		svc.Close()
		return err
	}
	return svc.Run(ctx)
}

// wire adds payments' own parts to the chassis.
func wire(svc *chassis.Service, cfg settings) error {
	store := postgres.New(svc.Pool)
	psp := pspclient.New(cfg.PSPURL, cfg.PSPTimeout)
	handlers := saga.New(store, psp, saga.Config{Attempts: cfg.Attempts}, svc.Tel.TracerProvider)
	if err := svc.Consume([]string{saga.OrdersTopic, saga.InventoryTopic}, handlers.Routes()); err != nil {
		return err
	}
	httpapi.Routes(svc.Server.Echo, store)
	return nil
}
