package kafka

import (
	kafkago "github.com/segmentio/kafka-go"
)

// headerCarrier adapts Kafka headers to the OTel propagation carrier.
type headerCarrier struct{ h *[]kafkago.Header }

func (c headerCarrier) Get(key string) string {
	for _, x := range *c.h {
		if x.Key == key {
			return string(x.Value)
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	for i, x := range *c.h {
		if x.Key == key {
			(*c.h)[i].Value = []byte(value)
			return
		}
	}
	*c.h = append(*c.h, kafkago.Header{Key: key, Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, len(*c.h))
	for i, x := range *c.h {
		keys[i] = x.Key
	}
	return keys
}
