// Package kafkatest gives integration tests a real Kafka-protocol broker.
package kafkatest

import (
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/example/sagasuite/platform/kafka"
)

// Brokers returns the brokers of a cluster for t, in the suite's order of
// preference: TEST_KAFKA_BROKERS when set (a real Kafka), else a Kafka
// container when a Docker engine answers, else an in-process kfake cluster
// that is closed when t ends. Tests must use topic and group names of their
// own, since a real cluster is shared.
func Brokers(t testing.TB) []string {
	t.Helper()
	if b := kafka.SplitBrokers(os.Getenv("TEST_KAFKA_BROKERS")); len(b) > 0 {
		return b
	}
	if b, ok := containerBrokers(t); ok {
		return b
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(3), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatalf("start in-process kafka: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}
