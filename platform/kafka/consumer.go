package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Handler processes one message. Returning nil commits it; an error wrapped
// with Permanent dead-letters it; any other error retries it.
// Handlers must be idempotent: a message can arrive more than once.
type Handler interface {
	Handle(ctx context.Context, m Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m Message) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, m Message) error { return f(ctx, m) }

// ConsumerConfig configures a Consumer. Brokers, Group, Topics and DLQ are
// required.
type ConsumerConfig struct {
	Brokers []string
	Group   string   // consumer group ID; also the messaging.consumer.group.name
	Topics  []string // topics consumed by the group
	// DLQ sends messages that can never be processed to "<topic>.dlq".
	DLQ *Publisher
	// SessionTimeout is how long a dead consumer keeps its partitions;
	// 0 means 10 s (kfake refuses less than 6 s by default).
	SessionTimeout time.Duration
	// MaxBackoff caps the wait between retries of a failing message; 0 means 5 s.
	MaxBackoff time.Duration
	Observers
}

// Consumer runs a consumer group, one message at a time per process:
// messages with the same key are handled in the order they were written.
type Consumer struct {
	cfg       ConsumerConfig
	h         Handler
	obs       observers
	consumed  metric.Int64Counter
	processed metric.Float64Histogram
}

// NewConsumer returns a consumer that passes every message to h.
func NewConsumer(cfg ConsumerConfig, h Handler) (*Consumer, error) {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if cfg.Group == "" {
		errs = append(errs, errors.New("no group"))
	}
	if len(cfg.Topics) == 0 {
		errs = append(errs, errors.New("no topics"))
	}
	if cfg.DLQ == nil {
		errs = append(errs, errors.New("no dead-letter publisher"))
	}
	if h == nil {
		errs = append(errs, errors.New("no handler"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	c := &Consumer{cfg: cfg, h: h, obs: cfg.Observers.build()}
	var err error
	if c.consumed, err = c.obs.meter.Int64Counter("messaging.client.consumed.messages",
		metric.WithDescription("Messages consumed, by topic and outcome (ok, retry, dead_letter)."), metric.WithUnit("{message}")); err != nil {
		return nil, err
	}
	if c.processed, err = c.obs.meter.Float64Histogram("messaging.process.duration",
		metric.WithDescription("Time a handler took per message attempt."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)); err != nil {
		return nil, err
	}
	return c, nil
}

// Run consumes until ctx is done, then leaves the group and returns nil.
// It returns an error only when the group cannot be consumed at all.
func (c *Consumer) Run(ctx context.Context) error {
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:     c.cfg.Brokers,
		GroupID:     c.cfg.Group,
		GroupTopics: c.cfg.Topics,
		// A new group starts at the beginning: nothing written before the
		// first start of a service is skipped.
		StartOffset:       kafkago.FirstOffset,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           500 * time.Millisecond,
		ReadBatchTimeout:  time.Second,
		SessionTimeout:    c.cfg.SessionTimeout,
		HeartbeatInterval: c.cfg.SessionTimeout / 5,
		RebalanceTimeout:  c.cfg.SessionTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
		CommitInterval:    0, // commit synchronously, after the handler
		ErrorLogger: kafkago.LoggerFunc(func(msg string, args ...any) {
			c.obs.log.Warn("kafka reader: "+fmt.Sprintf(msg, args...), "group", c.cfg.Group)
		}),
	})
	defer r.Close()
	for {
		km, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("consume %v as %s: %w", c.cfg.Topics, c.cfg.Group, err)
		}
		if !c.process(ctx, km) {
			return nil // ctx done mid-retry: the message stays uncommitted
		}
		if err := r.CommitMessages(ctx, km); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Not fatal: the message is redelivered and deduplicated.
			c.obs.log.Warn("commit offset", "topic", km.Topic, "partition", km.Partition, "offset", km.Offset, "error", err)
		}
	}
}

// process handles km until it succeeds or is dead-lettered; false means ctx
// ended first.
func (c *Consumer) process(ctx context.Context, km kafkago.Message) bool {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		outcome, err := c.attempt(ctx, km, attempt)
		c.consumed.Add(ctx, 1, metric.WithAttributes(semconv.MessagingSystemKafka,
			semconv.MessagingDestinationName(km.Topic), semconv.MessagingConsumerGroupName(c.cfg.Group),
			attribute.String("outcome", outcome)))
		if err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

func (c *Consumer) attempt(ctx context.Context, km kafkago.Message, attempt int) (outcome string, err error) {
	msg, decodeErr := decode(km)
	parent := c.obs.propagator.Extract(ctx, headerCarrier{&km.Headers})
	ctx, span := c.obs.tracer.Start(parent, "process "+km.Topic, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingDestinationName(km.Topic),
			semconv.MessagingConsumerGroupName(c.cfg.Group),
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationPartitionID(strconv.Itoa(km.Partition)),
			semconv.MessagingKafkaOffset(int(km.Offset)),
			semconv.MessagingKafkaMessageKey(string(km.Key)),
			semconv.MessagingMessageID(msg.ID),
			semconv.MessagingMessageBodySize(len(km.Value)),
			attribute.String("cloudevents.event_type", msg.Type),
			attribute.Int("messaging.delivery_attempt", attempt),
		))
	defer span.End()
	start := time.Now()
	defer func() {
		c.processed.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
			semconv.MessagingSystemKafka, semconv.MessagingDestinationName(km.Topic),
			semconv.MessagingConsumerGroupName(c.cfg.Group), attribute.String("outcome", outcome)))
	}()

	err = decodeErr
	if err == nil {
		err = c.h.Handle(ctx, msg)
		if err != nil && !IsPermanent(err) {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			c.obs.log.WarnContext(ctx, "message failed, will retry", "topic", km.Topic, "type", msg.Type,
				"id", msg.ID, "attempt", attempt, "error", err)
			return "retry", err
		}
	}
	if err == nil {
		return "ok", nil
	}
	// Never processable: park it and go on.
	span.RecordError(err)
	span.SetStatus(codes.Error, "dead-lettered: "+err.Error())
	if dlqErr := c.deadLetter(ctx, km, err); dlqErr != nil {
		c.obs.log.ErrorContext(ctx, "dead-letter failed, will retry", "topic", km.Topic, "error", dlqErr)
		return "retry", dlqErr
	}
	c.obs.log.WarnContext(ctx, "message dead-lettered", "topic", km.Topic, "dlq", km.Topic+".dlq",
		"partition", km.Partition, "offset", km.Offset, "type", msg.Type, "id", msg.ID, "reason", err.Error())
	return "dead_letter", nil
}

func (c *Consumer) deadLetter(ctx context.Context, km kafkago.Message, reason error) error {
	headers := append([]kafkago.Header(nil), km.Headers...)
	hc := headerCarrier{&headers}
	hc.Set(HeaderDLQReason, reason.Error())
	hc.Set("dlq_topic", km.Topic)
	hc.Set("dlq_partition", strconv.Itoa(km.Partition))
	hc.Set("dlq_offset", strconv.FormatInt(km.Offset, 10))
	hc.Set("dlq_group", c.cfg.Group)
	return c.cfg.DLQ.forward(ctx, km.Topic+".dlq", kafkago.Message{Key: km.Key, Value: km.Value, Headers: headers})
}
