// Command devetcd runs an embedded etcd for `make dev`: clients on
// ETCD_PORT (2379), data in ETCD_DATA_DIR, which survives restarts.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/etcdtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devetcd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := config.New(getenv)
	port := env.Int("ETCD_PORT", 2379, 1, 65534)
	dir := env.String("ETCD_DATA_DIR", ".dev/etcd")
	if err := env.Err(); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, nil)).With("service", "devetcd")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	ep, stopEtcd, err := etcdtest.Embedded(dir, port)
	if err != nil {
		return err
	}
	log.Info("etcd ready", "endpoint", ep, "data_dir", dir)
	<-ctx.Done()
	stopEtcd()
	log.Info("etcd stopped")
	return nil
}
