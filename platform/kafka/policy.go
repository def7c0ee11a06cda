package kafka

import (
	"context"
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

// delivery is what the policies tell the consumer about one message:
// how many attempts failed and how it ended.
type delivery struct {
	c        *Consumer
	attrs    metric.MeasurementOption // topic and group
	attempts int                      // failed attempts so far
	outcome  string                   // "ok" or "dead_letter"
}

type deliveryKey struct{}

func deliveryOf(ctx context.Context) *delivery {
	d, _ := ctx.Value(deliveryKey{}).(*delivery)
	return d
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
// is logged, counted as outcome="retry" and noted on the message's span.
func Retry(maxBackoff time.Duration) Middleware {
	if maxBackoff <= 0 {
		maxBackoff = 5 * time.Second
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m Message) error {
			backoff := 50 * time.Millisecond
			hopeless := 0
			for attempt := 1; ; attempt++ {
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
				trace.SpanFromContext(ctx).AddEvent("retry", trace.WithAttributes(
					attribute.Int("messaging.delivery_attempt", attempt), attribute.String("error", err.Error())))
				if d := deliveryOf(ctx); d != nil {
					d.attempts = attempt
					d.c.consumed.Add(ctx, 1, d.attrs, metric.WithAttributes(attribute.String("outcome", "retry")))
					d.c.obs.log.WarnContext(ctx, "message failed, will retry", "topic", m.Topic, "type", m.Type,
						"id", m.ID, "attempt", attempt, "retry_in", backoff, "error", err)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, maxBackoff)
			}
		})
	}
}

// DeadLetter parks a message that failed permanently (Permanent: not a
// CloudEvent, an unknown type, data that does not validate; or Hopeless
// on its HopelessTries-th try under Retry) on
// "<topic>.dlq" with why and where it came from in headers, and reports
// it handled, so consumption goes on. `redrive` sends parked messages
// back. A dead-letter that cannot be sent is a transient failure: an
// outer Retry tries the message again.
func DeadLetter(dlq *Publisher) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, m Message) error {
			err := next.Handle(ctx, m)
			d := deliveryOf(ctx)
			if lastTry := d != nil && d.attempts+1 >= HopelessTries; IsHopeless(err) && lastTry {
				err = Permanent(fmt.Errorf("gave up after %d tries: %w", HopelessTries, err))
			}
			if err == nil || !IsPermanent(err) {
				return err
			}
			span := trace.SpanFromContext(ctx)
			span.RecordError(err)
			span.SetStatus(codes.Error, "dead-lettered: "+err.Error())
			group := ""
			if d != nil {
				group = d.c.cfg.Group
			}
			if dlqErr := sendDeadLetter(ctx, dlq, m, group, err); dlqErr != nil {
				dlq.obs.log.ErrorContext(ctx, "dead-letter failed", "topic", m.Topic, "error", dlqErr)
				return dlqErr
			}
			dlq.obs.log.WarnContext(ctx, "message dead-lettered", "topic", m.Topic, "dlq", m.Topic+".dlq",
				"partition", m.Partition, "offset", m.Offset, "type", m.Type, "id", m.ID, "reason", err.Error())
			if d != nil {
				d.outcome = "dead_letter"
			}
			return nil
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
