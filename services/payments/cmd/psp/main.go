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

	"github.com/example/sagasuite/platform/cardcrypt"
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
		AdminToken: env.Secret("ADMIN_TOKEN", "dev-admin-token"),
		AdminAddr:  env.OptionalAddr("ADMIN_ADDR"),
	}
	// The card-encryption keyring: kept in PSP_KEY_FILE (created on first
	// start), so a restart or another replica opens the tokens sealed to
	// it; without the file the keys live and die with the process.
	keyFile := env.String("PSP_KEY_FILE", "")
	if err := env.Err(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	keys, err := loadKeys(keyFile)
	if err != nil {
		return err
	}
	// No database, no Kafka: a stand-in for a third party.
	return chassis.Run(ctx, cfg, getenv, stdout, func(svc *chassis.Service) error {
		if keyFile == "" {
			svc.Log.Warn("PSP_KEY_FILE is not set: card-encryption keys are kept in memory, and tokens sealed before a restart will not open")
		}
		sim, err := psp.New(keys, svc.Tel.MeterProvider.Meter("github.com/example/sagasuite/services/payments/internal/psp"))
		if err != nil {
			return err
		}
		sim.Routes(svc.Server.Echo, svc.Admin)
		return nil
	})
}

func loadKeys(file string) (*cardcrypt.Keyring, error) {
	if file == "" {
		return cardcrypt.NewKeyring()
	}
	return cardcrypt.LoadOrCreateKeyring(file)
}
