// Command psp is the payment service provider simulator: the "external"
// provider payments charges through, with the test cards of CONTRACT.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/example/sagasuite/platform/chassis"
	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/services/payments/internal/psp"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "psp:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := config.New(getenv)
	host, _ := os.Hostname()
	cfg := chassis.Config{
		Name:       "psp",
		Version:    version,
		InstanceID: env.String("INSTANCE_ID", "psp-"+host),
		LogLevel:   env.LogLevel("LOG_LEVEL"),
		HTTPAddr:   env.Addr("HTTP_ADDR", ":8090"),
		AdminToken: env.Required("ADMIN_TOKEN", "dev-admin-token"),
	}
	secret := env.Required("PSP_TOKEN_SECRET", "dev-psp-token-secret")
	if err := env.Err(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// No database, no Kafka: a stand-in for a third party.
	return chassis.Run(ctx, cfg, getenv, stdout, func(svc *chassis.Service) error {
		sim, err := psp.New(secret, svc.Tel.MeterProvider.Meter("github.com/example/sagasuite/services/payments/internal/psp"))
		if err != nil {
			return err
		}
		sim.Routes(svc.Server.Echo)
		return nil
	})
}
