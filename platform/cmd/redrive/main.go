// Command redrive sends a dead-letter topic's messages back to the topic
// they came from, once the bug that dead-lettered them is fixed. Each
// message goes back once (the "redrive" consumer group remembers how far
// it got), keeps its ce_id (consumers that applied it already skip it),
// and is sent under a span linked to its first delivery's trace.
//
//	go run ./platform/cmd/redrive -dlq payments.events.dlq
//	go run ./platform/cmd/redrive -dlq orders.events.dlq -max 10
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "redrive:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("redrive", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "Kafka brokers, comma-separated (default: KAFKA_BROKERS, else 127.0.0.1:9092)")
	dlq := fs.String("dlq", "", `the dead-letter topic, e.g. "payments.events.dlq" (required)`)
	max := fs.Int("max", 0, "send back at most this many (0: all)")
	idle := fs.Duration("idle", 2*time.Second, "stop when no dead letter arrives for this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dlq == "" {
		return errors.New("-dlq is required")
	}
	if *brokers == "" {
		*brokers = getenv("KAFKA_BROKERS")
	}
	if *brokers == "" {
		*brokers = "127.0.0.1:9092"
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "redrive"}, getenv, stderr) // logs to stderr: stdout is the result
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	list := kafka.SplitBrokers(*brokers)
	pub, err := kafka.NewPublisher(tel.Bundle, kafka.PublisherConfig{Brokers: list})
	if err != nil {
		return err
	}
	defer pub.Close()
	res, err := kafka.Redrive(ctx, kafka.RedriveConfig{Brokers: list, DLQ: *dlq, Publisher: pub, Max: *max, Idle: *idle})
	out, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(out))
	return err
}
