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

	"github.com/example/sagasuite/platform/observe"
)

// Middleware wraps a Handler with a policy: what to do when it fails
// (Retry, DeadLetter), or what to do around it (inbox.Handler makes it
// exactly-once). Policies compose per subscription, in
// ConsumerConfig.Policies.
type Middleware func(Handler) Handler

// Chain wraps h in mws, the first outermost: Chain(h, Retry(…),
// DeadLetter(…)) dead-letters a permanent failure, and retries a
// transient one (and a dead-letter that could not be sent).
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// DeadLetteredError is what DeadLetter returns for a message it parked:
// permanent (no policy outside tries it again), and handled for the
// consumer, which commits the message and counts it as dead-lettered.
type DeadLetteredError struct{ Err error }

func (e *DeadLetteredError) Error() string { return "dead-lettered: " + e.Err.Error() }
func (e *DeadLetteredError) Unwrap() error { return e.Err }

// IsDeadLettered reports whether a policy parked the message.
func IsDeadLettered(err error) bool {
	var d *DeadLetteredError
	return errors.As(err, &d)
}

// HopelessTries is how many times Retry tries a message whose failure is
// Hopeless before it gives up on it as Permanent.
const HopelessTries = 5

// Retry handles a message again after a transient failure (any error not
// wrapped with Permanent), with exponential backoff from 50 ms up to
// maxBackoff (0 means 5 s), until it succeeds, fails permanently or the
// consumer stops. A transient failure is never skipped: a database that
// is down holds the message's key until it is back, while other keys go
// on. A Hopeless failure (data the database refuses) is tried
// HopelessTries times, then returned as Permanent: a message that can
// never apply must not stop its partition for ever. Each failed attempt
// is logged and counted through tel (messaging.client.consumed.messages,
// outcome="retry"), noted on the message's span, and the next attempt
// sees its number in Message.Attempt.
func Retry(tel observe.Bundle, maxBackoff time.Duration) (Middleware, error) {
	if err := tel.For("kafka retry"); err != nil {
		return nil, err
	}
	if maxBackoff <= 0 {
		maxBackoff = 5 * time.Second
	}
	o := build(tel)
	consumed, err := consumedCounter(o.meter)
	if err != nil {
		return nil, err
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m Message) error {
			backoff := 50 * time.Millisecond
			hopeless := 0
			for attempt := max(m.Attempt, 1); ; attempt++ {
				m.Attempt = attempt
				err := next.Handle(ctx, m)
				if err == nil || IsPermanent(err) || ctx.Err() != nil {
					return err
				}
				if IsHopeless(err) {
					// DeadLetter, inside, parks it on its last try; without
					// it the consumer gets it back as a permanent failure.
					if hopeless++; hopeless >= HopelessTries {
						return Permanent(fmt.Errorf("gave up after %d tries: %w", attempt, err))
					}
				}
				span := trace.SpanFromContext(ctx)
				span.AddEvent("retry", trace.WithAttributes(
					attribute.Int("messaging.delivery_attempt", attempt), attribute.String("error", err.Error())))
				span.SetAttributes(attribute.Int("messaging.delivery_attempt", attempt+1))
				consumed.Add(ctx, 1, metric.WithAttributes(semconvTopicGroup(m.Topic, m.Group)...),
					metric.WithAttributes(attribute.String("outcome", "retry")))
				o.log.WarnContext(ctx, "message failed, will retry", "topic", m.Topic, "type", m.Type,
					"id", m.ID, "attempt", attempt, "retry_in", backoff, "error", err)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, maxBackoff)
			}
		})
	}, nil
}

// DeadLetter parks a message that failed permanently (Permanent: not a
// CloudEvent, an unknown type, data that does not validate; or Hopeless
// on its HopelessTries-th try under Retry) on
// "<topic>.dlq" with why and where it came from in headers, and reports
// it handled, so consumption goes on. `redrive` sends parked messages
// back. It returns a DeadLetteredError, which the consumer counts and
// commits. A dead-letter that cannot be sent is a transient failure: an
// outer Retry tries the message again.
func DeadLetter(dlq *Publisher) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m Message) error {
			err := next.Handle(ctx, m)
			if IsHopeless(err) && m.Attempt >= HopelessTries {
				err = Permanent(fmt.Errorf("gave up after %d tries: %w", HopelessTries, err))
			}
			if err == nil || !IsPermanent(err) || IsDeadLettered(err) {
				return err
			}
			span := trace.SpanFromContext(ctx)
			span.RecordError(err)
			span.SetStatus(codes.Error, "dead-lettered: "+err.Error())
			if dlqErr := sendDeadLetter(ctx, dlq, m, m.Group, err); dlqErr != nil {
				dlq.obs.log.ErrorContext(ctx, "dead-letter failed", "topic", m.Topic, "error", dlqErr)
				return dlqErr
			}
			dlq.obs.log.WarnContext(ctx, "message dead-lettered", "topic", m.Topic, "dlq", m.Topic+".dlq",
				"partition", m.Partition, "offset", m.Offset, "type", m.Type, "id", m.ID, "reason", err.Error())
			return &DeadLetteredError{Err: err}
		})
	}
}

func sendDeadLetter(ctx context.Context, dlq *Publisher, m Message, group string, reason error) error {
	topic := m.Topic + ".dlq"
	ctx, span := dlq.obs.tracer.Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(semconv.MessagingSystemKafka, semconv.MessagingDestinationName(topic),
			semconv.MessagingOperationName("send"), attribute.String("messaging.kafka.dlq.reason", reason.Error())))
	defer span.End()
	headers := append([]kafkago.Header(nil), m.Headers...)
	hc := headerCarrier{&headers}
	hc.Set(HeaderDLQReason, reason.Error())
	hc.Set("dlq_topic", m.Topic)
	hc.Set("dlq_partition", strconv.Itoa(m.Partition))
	hc.Set("dlq_offset", strconv.FormatInt(m.Offset, 10))
	hc.Set("dlq_group", group)
	err := dlq.forward(ctx, topic, kafkago.Message{Key: []byte(m.Key), Value: m.Data, Headers: headers})
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}
