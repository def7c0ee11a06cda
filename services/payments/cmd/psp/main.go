// Command psp is the payment service provider simulator: the "external"
// provider payments charges through, with the test cards of api/openapi.yaml (POST /charges).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/example/sagasuite/platform/cardcrypt"
	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/process"
	"github.com/example/sagasuite/platform/telemetry"
	"github.com/example/sagasuite/services/payments/internal/pspsim"
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
	cfg := process.FromEnv(env, "psp", version, ":8090")
	// The card-encryption keyring: kept in PSP_KEY_FILE (created on first
	// start), so a restart or another replica opens the tokens sealed to
	// it; without the file the keys live and die with the process.
	keyFile := env.String("PSP_KEY_FILE", "")
	// Its ledger (charges, refunds, the answer to every idempotency key):
	// kept in PSP_LEDGER_FILE, so a restarted provider does not forget the
	// money it holds, nor charge a replayed key twice.
	ledgerFile := env.String("PSP_LEDGER_FILE", "")
	if err := env.Err(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	keys, err := loadKeys(keyFile)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, cfg.Telemetry(), getenv, stdout)
	if err != nil {
		return err
	}
	// No database, no Kafka, no etcd: a stand-in for a third party, with
	// fault injection so users can watch payments' breaker open.
	p, err := process.New(tel, cfg)
	if err != nil {
		return err
	}
	if keyFile == "" {
		p.Log.Warn("PSP_KEY_FILE is not set: card-encryption keys are kept in memory, and tokens sealed before a restart will not open")
	}
	if ledgerFile == "" {
		p.Log.Warn("PSP_LEDGER_FILE is not set: the ledger is kept in memory, and a restart forgets every charge")
	}
	// What merchants pin (orders' PSP_KEY_FINGERPRINTS), told out of band.
	k := keys.Current()
	p.Log.Info("card-encryption key", "key_id", k.ID, "fingerprint", k.Fingerprint())
	sim, err := pspsim.New(tel.Bundle, pspsim.Config{Keys: keys, LedgerFile: ledgerFile})
	if err != nil {
		p.Close()
		return err
	}
	p.Add("ledger", sim)
	// A slow provider still charges after the client gave up.
	injector := &faults.Injector{Detached: true}
	if err := injector.Export(tel.Bundle, sim.FaultsProbe); err != nil {
		p.Close()
		return err
	}
	sim.Routes(p.Server.Echo, p.Admin, injector)
	return p.Run(ctx)
}

func loadKeys(file string) (*cardcrypt.Keyring, error) {
	if file == "" {
		return cardcrypt.NewKeyring()
	}
	return cardcrypt.LoadOrCreateKeyring(file)
}
