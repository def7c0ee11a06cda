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
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// RedriveConfig says which dead letters to send back. Brokers, DLQ and
// Publisher are required.
type RedriveConfig struct {
	Brokers []string
	// DLQ is the dead-letter topic, "<topic>.dlq"; its messages go back to
	// <topic> (the dlq_topic header, when present, wins).
	DLQ       string
	Publisher *Publisher
	// Group remembers how far redriving got, so a message is sent back
	// once; "" means "redrive".
	Group string
	// Max caps the messages sent back in one run; 0 means no cap.
	Max int
	// Idle ends the run when no dead letter arrives for this long; 0 means 2 s.
	// (A run also ends once it reached the end the DLQ had when it began.)
	Idle time.Duration
}

// RedriveResult counts what a run did.
type RedriveResult struct {
	Redriven int            `json:"redriven"`
	ByTopic  map[string]int `json:"by_topic"`
}

// Redrive sends dead letters back to the topic they came from, after the
// fix that lets their consumer process them (DLQ redrive). A message keeps
// its key, value and CloudEvents headers, ce_id included: the consumer
// that dead-lettered it never recorded it, and consumers that had applied
// it skip it again (inbox). The dead-letter headers go; a redriven_from
// header says where it was. Each message is sent under a new "redrive"
// span linked to the trace of the message's first delivery, so the
// trace of the retry leads back to the original.
//
// A run sends back what the DLQ held when it began, and stops there: a
// message that still fails is dead-lettered again behind that end, and
// waits for the next run instead of going round in this one.
func Redrive(ctx context.Context, cfg RedriveConfig) (RedriveResult, error) {
	res := RedriveResult{ByTopic: map[string]int{}}
	if len(cfg.Brokers) == 0 || cfg.Publisher == nil || !strings.HasSuffix(cfg.DLQ, ".dlq") {
		return res, errors.New("redrive: brokers, a publisher and a \"<topic>.dlq\" are required")
	}
	if cfg.Group == "" {
		cfg.Group = "redrive"
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 2 * time.Second
	}
	spans, err := groupSpans(ctx, cfg.Brokers, cfg.Group, []string{cfg.DLQ})
	if err != nil {
		return res, fmt.Errorf("redrive: where %s stands in %s: %w", cfg.Group, cfg.DLQ, err)
	}
	end := map[int]int64{} // partition → the end offset when the run began
	left := 0              // partitions with dead letters before their end
	for p, sp := range spans[cfg.DLQ] {
		end[p] = sp.end
		if sp.end > sp.from {
			left++
		}
	}
	if left == 0 {
		return res, nil
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: cfg.Brokers, GroupID: cfg.Group, Topic: cfg.DLQ,
		StartOffset: kafkago.FirstOffset, MaxWait: 200 * time.Millisecond, CommitInterval: 0,
		SessionTimeout: 6 * time.Second, JoinGroupBackoff: 200 * time.Millisecond})
	defer r.Close()
	obs := cfg.Publisher.obs
	for left > 0 && (cfg.Max == 0 || res.Redriven < cfg.Max) {
		fctx, cancel := context.WithTimeout(ctx, cfg.Idle)
		km, err := r.FetchMessage(fctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return res, nil // caught up
			}
			return res, fmt.Errorf("redrive: read %s: %w", cfg.DLQ, err)
		}
		if km.Offset >= end[km.Partition] {
			continue // dead-lettered after the run began: the next run's
		}
		if km.Offset+1 == end[km.Partition] {
			left--
		}
		topic, msg := redriven(cfg.DLQ, km)
		orig := obs.propagator.Extract(ctx, headerCarrier{&km.Headers})
		sctx, span := obs.tracer.Start(ctx, "redrive "+topic, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithNewRoot(), trace.WithLinks(trace.LinkFromContext(orig, attribute.String("link.reason", "dead-lettered delivery"))),
			trace.WithAttributes(semconv.MessagingSystemKafka, semconv.MessagingDestinationName(topic),
				attribute.String("messaging.kafka.dlq", cfg.DLQ), attribute.Int64("messaging.kafka.dlq.offset", km.Offset)))
		hc := headerCarrier{&msg.Headers}
		obs.propagator.Inject(sctx, hc) // the retry's spans join the redrive's trace
		err = cfg.Publisher.forward(sctx, topic, msg)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		if err != nil {
			return res, err
		}
		if err := r.CommitMessages(ctx, km); err != nil {
			return res, fmt.Errorf("redrive: commit %s: %w", cfg.DLQ, err)
		}
		res.Redriven++
		res.ByTopic[topic]++
	}
	return res, nil
}

// redriven is the message a dead letter becomes on its way back.
func redriven(dlq string, km kafkago.Message) (string, kafkago.Message) {
	topic := strings.TrimSuffix(dlq, ".dlq")
	var hs []kafkago.Header
	for _, h := range km.Headers {
		switch {
		case h.Key == "dlq_topic":
			if v := string(h.Value); v != "" {
				topic = v
			}
		case h.Key == HeaderDLQReason, strings.HasPrefix(h.Key, "dlq_"), h.Key == "traceparent", h.Key == "tracestate":
		default:
			hs = append(hs, h)
		}
	}
	hs = append(hs, kafkago.Header{Key: "redriven_from", Value: fmt.Appendf(nil, "%s/%d/%d", dlq, km.Partition, km.Offset)})
	return topic, kafkago.Message{Key: km.Key, Value: km.Value, Headers: hs}
}
