package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/observe"
)

// PublisherConfig configures a Publisher. Brokers is required.
type PublisherConfig struct {
	Brokers []string
	// BatchTimeout is how long the writer waits to fill a batch; 0 means
	// 100 µs. kafka-go's own default (1 s) would add a second to every hop;
	// callers batch already (the outbox relay sends a batch per call), so
	// waiting for more only delays them (1 ms cost a saga 4 ms at p50).
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request; 0 means 10 s.
	WriteTimeout time.Duration
}

// Publisher sends events and returns once all in-sync replicas have them.
// It is safe for concurrent use; Close flushes and releases connections.
type Publisher struct {
	w        *kafkago.Writer
	brokers  []string
	obs      observers
	sent     metric.Int64Counter
	duration metric.Float64Histogram
}

// NewPublisher returns a publisher for the brokers, reporting through tel.
func NewPublisher(tel observe.Bundle, cfg PublisherConfig) (*Publisher, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka publisher: no brokers")
	}
	if err := tel.For("kafka publisher"); err != nil {
		return nil, err
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 100 * time.Microsecond
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	p := &Publisher{
		w: &kafkago.Writer{
			Addr: kafkago.TCP(cfg.Brokers...),
			// Murmur2 places keys on the partitions the Java client would.
			Balancer:     &kafkago.Murmur2Balancer{},
			RequiredAcks: kafkago.RequireAll, // zero would mean "no acks"
			BatchTimeout: cfg.BatchTimeout,
			BatchSize:    500,
			WriteTimeout: cfg.WriteTimeout,
		},
		obs: build(tel), brokers: cfg.Brokers,
	}
	var err error
	if p.sent, err = p.obs.meter.Int64Counter("messaging.client.sent.messages",
		metric.WithDescription("Messages sent to Kafka, by topic and outcome."), metric.WithUnit("{message}")); err != nil {
		return nil, err
	}
	if p.duration, err = p.obs.meter.Float64Histogram("messaging.client.operation.duration",
		metric.WithDescription("Time to send a batch and have it acknowledged."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)); err != nil {
		return nil, err
	}
	return p, nil
}

// Publish sends events to topic in order and returns after every one was
// acknowledged; on error some may have been written (at-least-once: the
// caller retries and consumers deduplicate on the event ID).
func (p *Publisher) Publish(ctx context.Context, topic string, events ...Event) error {
	msgs := make([]kafkago.Message, len(events))
	spans := make([]trace.Span, len(events))
	for i, e := range events {
		if err := e.validate(); err != nil {
			return fmt.Errorf("publish %s event %s: %w", e.Type, e.ID, err)
		}
		parent := ctx
		if len(e.Trace) > 0 {
			parent = p.obs.propagator.Extract(ctx, propagation.MapCarrier(e.Trace))
		}
		headers := e.headers()
		var span trace.Span
		parent, span = p.obs.tracer.Start(parent, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				semconv.MessagingSystemKafka,
				semconv.MessagingDestinationName(topic),
				semconv.MessagingOperationName("send"),
				semconv.MessagingOperationTypeSend,
				semconv.MessagingMessageID(e.ID),
				semconv.MessagingKafkaMessageKey(e.Key),
				semconv.MessagingMessageBodySize(len(e.Data)),
				attribute.String("cloudevents.event_type", e.Type),
			))
		p.obs.propagator.Inject(parent, headerCarrier{&headers})
		spans[i] = span
		msgs[i] = kafkago.Message{Topic: topic, Key: []byte(e.Key), Value: e.Data, Headers: headers}
	}
	err := p.write(ctx, topic, msgs)
	for _, span := range spans {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	return err
}

// forward re-sends raw messages (the dead-letter path), keeping their headers.
func (p *Publisher) forward(ctx context.Context, topic string, msgs ...kafkago.Message) error {
	for i := range msgs {
		msgs[i].Topic = topic
	}
	return p.write(ctx, topic, msgs)
}

func (p *Publisher) write(ctx context.Context, topic string, msgs []kafkago.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	start := time.Now()
	err := p.w.WriteMessages(ctx, msgs...)
	outcome := "ok"
	if err != nil {
		outcome = "error"
		err = fmt.Errorf("publish %d messages to %s: %w", len(msgs), topic, err)
	}
	attrs := metric.WithAttributes(semconv.MessagingSystemKafka, semconv.MessagingDestinationName(topic),
		semconv.MessagingOperationName("send"), attribute.String("outcome", outcome))
	p.sent.Add(ctx, int64(len(msgs)), attrs)
	p.duration.Record(ctx, time.Since(start).Seconds(), attrs)
	return err
}

// Ready is a readiness check: nil while a broker answers.
func (p *Publisher) Ready(ctx context.Context) error { return Ping(ctx, p.brokers) }

// Lifecycle: degradable readiness (the API goes on while the broker is
// away: the outbox holds what waits), closed at stop.
func (p *Publisher) Lifecycle() lifecycle.Parts {
	return lifecycle.Parts{Ready: p.Ready, Degradable: true, Close: p.Close}
}

// Close flushes pending writes and closes connections.
func (p *Publisher) Close() error {
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("close kafka publisher: %w", err)
	}
	return nil
}

// SplitBrokers parses a comma-separated broker list (KAFKA_BROKERS).
func SplitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}
