package kafkatest

import "testing"

// containerBrokers starts a Kafka container when Docker answers.
func containerBrokers(t testing.TB) ([]string, bool) {
	return nil, false
}
