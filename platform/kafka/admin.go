package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// EnsureTopics creates each topic and its "<topic>.dlq" if missing, with
// the given partition count and the cluster's default replication.
func EnsureTopics(ctx context.Context, brokers []string, partitions int, topics ...string) error {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	var cfgs []kafkago.TopicConfig
	for _, t := range topics {
		for _, name := range []string{t, t + ".dlq"} {
			cfgs = append(cfgs, kafkago.TopicConfig{Topic: name, NumPartitions: partitions, ReplicationFactor: -1})
		}
	}
	resp, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for name, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Ping asks the cluster for its metadata: the readiness check for Kafka.
func Ping(ctx context.Context, brokers []string) error {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 2 * time.Second}
	if _, err := client.Metadata(ctx, &kafkago.MetadataRequest{}); err != nil {
		return fmt.Errorf("kafka metadata: %w", err)
	}
	return nil
}
