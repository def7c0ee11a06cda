// Package kafkatest gives integration tests a real Kafka-protocol broker.
package kafkatest

import (
	"fmt"
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/example/sagasuite/platform/kafka"
)

// Brokers returns the brokers of a cluster for t, in the suite's order of
// preference: TEST_KAFKA_BROKERS when set (a real Kafka: make test points
// it at a container when Docker answers, platform/cmd/testdeps), else an
// in-process kfake cluster that is closed when t ends. Tests must use topic and group names of their
// own, since a real cluster is shared.
func Brokers(t testing.TB) []string {
	t.Helper()
	b, stop, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return b
}

// Start is Brokers for code without a testing.TB (TestMain); call stop
// when done.
func Start() (brokers []string, stop func(), err error) {
	if b := kafka.SplitBrokers(os.Getenv("TEST_KAFKA_BROKERS")); len(b) > 0 {
		return b, func() {}, nil
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(3), kfake.AllowAutoTopicCreation())
	if err != nil {
		return nil, nil, fmt.Errorf("start in-process kafka: %w", err)
	}
	return c.ListenAddrs(), c.Close, nil
}
