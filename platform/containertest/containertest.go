// Package containertest starts real dependencies in Docker with
// testcontainers, for machines where a Docker engine answers. Tests reach
// it through postgrestest and kafkatest, which fall back to the local
// PostgreSQL and an in-process broker when there is no engine.
//
// One container per dependency is started per test binary and shared by
// its tests; testcontainers' reaper removes them when the binary exits.
package containertest

import (
	"context"
	"fmt"
	"sync"
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

var (
	dockerOnce sync.Once
	dockerOK   bool
)

// DockerAnswers reports whether a Docker engine responds, asking once.
func DockerAnswers() bool {
	dockerOnce.Do(func() {
		defer func() { _ = recover() }() // the provider panics on some broken set-ups
		provider, err := testcontainers.ProviderDefault.GetProvider()
		if err != nil {
			return
		}
		defer provider.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		dockerOK = provider.Health(ctx) == nil
	})
	return dockerOK
}

var (
	pgOnce sync.Once
	pgURL  string
	pgErr  error
)

// Postgres returns the admin URL of a PostgreSQL container, starting it on
// first use; ok is false when there is no Docker engine.
func Postgres() (url string, ok bool, err error) {
	if !DockerAnswers() {
		return "", false, nil
	}
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c, err := tcpostgres.Run(ctx, PostgresImage, tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("postgres"),
			tcpostgres.WithDatabase("postgres"), tcpostgres.BasicWaitStrategies())
		if err != nil {
			pgErr = fmt.Errorf("start postgres container: %w", err)
			return
		}
		pgURL, pgErr = c.ConnectionString(ctx, "sslmode=disable")
	})
	return pgURL, true, pgErr
}

var (
	kafkaOnce    sync.Once
	kafkaBrokers []string
	kafkaErr     error
)

// Kafka returns the brokers of a Kafka container, starting it on first
// use; ok is false when there is no Docker engine.
func Kafka() (brokers []string, ok bool, err error) {
	if !DockerAnswers() {
		return nil, false, nil
	}
	kafkaOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c, err := tckafka.Run(ctx, KafkaImage, tckafka.WithClusterID("sagasuite-test"))
		if err != nil {
			kafkaErr = fmt.Errorf("start kafka container: %w", err)
			return
		}
		kafkaBrokers, kafkaErr = c.Brokers(ctx)
	})
	return kafkaBrokers, true, kafkaErr
}
