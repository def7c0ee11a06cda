// Command devkafka runs an embedded Kafka-protocol broker (kfake) for
// `make dev` and for machines without Docker. Topics and committed offsets
// survive restarts in KAFKA_DATA_DIR.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devkafka:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	log := slog.New(slog.NewJSONHandler(stdout, nil)).With("service", "devkafka")
	port, dir := 9092, getenv("KAFKA_DATA_DIR")
	var errs []error
	if p := getenv("KAFKA_PORT"); p != "" {
		var err error
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			errs = append(errs, fmt.Errorf("KAFKA_PORT=%q: want a port number", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.DefaultNumPartitions(6),
		kfake.AllowAutoTopicCreation(),
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	log.Info("kafka broker ready", "addrs", c.ListenAddrs(), "data_dir", dir)
	<-ctx.Done()
	c.Close()
	log.Info("kafka broker stopped")
	return nil
}
