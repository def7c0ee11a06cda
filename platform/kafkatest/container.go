package kafkatest

import "github.com/example/sagasuite/platform/containertest"

// containerBrokers starts a Kafka container when a Docker engine answers;
// it is shared by the test binary, so stopping it is left to the reaper.
func containerBrokers() ([]string, func(), bool, error) {
	b, ok, err := containertest.Kafka()
	return b, func() {}, ok, err
}
