package kafka

import (
	"context"
	"time"

	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/retry"
)

// Settings say how a service reaches Kafka.
type Settings struct {
	Brokers    []string // KAFKA_BROKERS
	Partitions int      // KAFKA_PARTITIONS: for topics this process creates
	Workers    int      // CONSUMER_WORKERS: messages handled in parallel, in order per key
}

// FromEnv reads KAFKA_BROKERS (default 127.0.0.1:9092), KAFKA_PARTITIONS
// (6) and CONSUMER_WORKERS (8).
func FromEnv(env *config.Env) Settings {
	return Settings{
		Brokers:    env.List("KAFKA_BROKERS", "127.0.0.1:9092"),
		Partitions: env.Int("KAFKA_PARTITIONS", 6, 1, 1000),
		Workers:    env.Int("CONSUMER_WORKERS", 8, 1, 256),
	}
}

// Connect waits up to a minute for the brokers of s (they may still be
// starting), creates the topics (and their .dlq) that are missing, with
// s.Partitions partitions, and returns a publisher: the process
// component for Kafka (Ready pings the brokers, Close flushes).
func Connect(ctx context.Context, s Settings, tel observe.Bundle, topics ...string) (*Publisher, error) {
	if err := tel.For("kafka"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := retry.Until(ctx, tel.Logger, "kafka", func(ctx context.Context) error {
		return EnsureTopics(ctx, s.Brokers, s.Partitions, topics...)
	}); err != nil {
		return nil, err
	}
	return NewPublisher(tel, PublisherConfig{Brokers: s.Brokers})
}
