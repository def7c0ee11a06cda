package kafka_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe/observetest"
)

// Retry numbers each attempt on the message it hands on, and counts every
// failed one on its own observers, with the consumer's attributes (topic,
// group), on the instrument the consumer counts the message on.
func TestRetryNumbersAndCountsEachFailedAttempt(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	var attempts []int
	h := kafka.Chain(kafka.HandlerFunc(func(_ context.Context, m kafka.Message) error {
		attempts = append(attempts, m.Attempt)
		if len(attempts) < 3 {
			return errors.New("database away")
		}
		return nil
	}), retryOn(t, mp))
	if err := h.Handle(context.Background(), kafka.Message{Topic: "orders.events", Group: "payments", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(attempts, []int{1, 2, 3}) {
		t.Fatalf("attempts %v, want 1, 2, 3", attempts)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	retries := int64(-1)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || m.Name != "messaging.client.consumed.messages" {
				continue
			}
			for _, dp := range sum.DataPoints {
				outcome, _ := dp.Attributes.Value("outcome")
				group, _ := dp.Attributes.Value("messaging.consumer.group.name")
				if outcome.AsString() == "retry" && group.AsString() == "payments" {
					retries = dp.Value
				}
			}
		}
	}
	if retries != 2 {
		t.Fatalf("retries counted %d, want the 2 failed attempts", retries)
	}

	// A permanent failure is not tried again.
	attempts = nil
	h = kafka.Chain(kafka.HandlerFunc(func(_ context.Context, m kafka.Message) error {
		attempts = append(attempts, m.Attempt)
		return kafka.Permanent(errors.New("not a valid event"))
	}), retryOn(t, mp))
	if err := h.Handle(context.Background(), kafka.Message{Topic: "t", Group: "g", Attempt: 1}); !kafka.IsPermanent(err) || len(attempts) != 1 {
		t.Fatalf("permanent: %v after %d attempts", err, len(attempts))
	}
}

// retryOn is kafka.Retry counting on mp.
func retryOn(t testing.TB, mp metric.MeterProvider) kafka.Middleware {
	t.Helper()
	m, err := kafka.Retry(observetest.With(nil, mp), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
