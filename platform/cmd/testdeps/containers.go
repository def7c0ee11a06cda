package main

import (
	"context"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// Images, pinned so every machine tests against the same servers.
const (
	PostgresImage = "postgres:16-alpine"
	KafkaImage    = "confluentinc/confluent-local:7.6.1"
)

// dockerAnswers reports whether a Docker engine responds within a few
// seconds: without one the tests use the local dependencies at once.
func dockerAnswers(ctx context.Context) (ok bool) {
	defer func() {
		if recover() != nil { // the provider panics on some broken set-ups
			ok = false
		}
	}()
	provider, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return false
	}
	defer provider.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return provider.Health(ctx) == nil
}

// startPostgres starts a PostgreSQL container and returns its admin URL
// and how to remove it.
func startPostgres(ctx context.Context) (string, func(context.Context) error, error) {
	c, err := tcpostgres.Run(ctx, PostgresImage, tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("postgres"),
		tcpostgres.WithDatabase("postgres"), tcpostgres.BasicWaitStrategies())
	if err != nil {
		return "", nil, fmt.Errorf("start postgres container: %w", err)
	}
	stop := func(ctx context.Context) error { return c.Terminate(ctx) }
	url, err := c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		return "", stop, fmt.Errorf("postgres container: %w", err)
	}
	return url, stop, nil
}

// startKafka starts a single-node Kafka container and returns its
// bootstrap brokers and how to remove it.
func startKafka(ctx context.Context) ([]string, func(context.Context) error, error) {
	c, err := tckafka.Run(ctx, KafkaImage, tckafka.WithClusterID("sagasuite-test"))
	if err != nil {
		return nil, nil, fmt.Errorf("start kafka container: %w", err)
	}
	stop := func(ctx context.Context) error { return c.Terminate(ctx) }
	b, err := c.Brokers(ctx)
	if err != nil {
		return nil, stop, fmt.Errorf("kafka container: %w", err)
	}
	return b, stop, nil
}
