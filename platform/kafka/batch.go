package kafka

import (
	"context"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// BatchHandler handles, in one call, the messages a worker has waiting:
// typically in one database transaction (inbox.Inbox.Batch), so that a
// busy consumer pays one commit for many messages instead of one each.
// ctxs[i] is msgs[i]'s context (its span, in its producer's trace). It
// must apply all of them or none: on an error the consumer handles the
// same messages again one at a time, through the policies and the
// per-message handler, so a failure is retried, dead-lettered or logged
// exactly as without batching.
type BatchHandler interface {
	HandleBatch(ctxs []context.Context, msgs []Message) error
}

// BatchFunc adapts a function to BatchHandler.
type BatchFunc func(ctxs []context.Context, msgs []Message) error

// HandleBatch calls f.
func (f BatchFunc) HandleBatch(ctxs []context.Context, msgs []Message) error { return f(ctxs, msgs) }

// take returns km and the messages waiting behind it in q, up to
// maxBatch: a quiet consumer handles one message at a time (no added
// latency), a busy one as many as have piled up. With gather, it waits
// that long for more once q is empty: the worker passes it only while
// its previous batch was full (ConsumerConfig.Gather), so below
// saturation nothing waits, and under load a batch is not cut short by a
// message a moment away. A worker's queue holds whole keys, in order,
// so a batch keeps each key's order.
func take(km kafkago.Message, q <-chan kafkago.Message, maxBatch int, gather time.Duration) []kafkago.Message {
	batch := []kafkago.Message{km}
	var until <-chan time.Time
	for len(batch) < maxBatch {
		select {
		case m, ok := <-q:
			if !ok {
				return batch
			}
			batch = append(batch, m)
			continue
		default:
		}
		if gather <= 0 {
			return batch
		}
		if until == nil {
			t := time.NewTimer(gather)
			defer t.Stop()
			until = t.C
		}
		select {
		case m, ok := <-q:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		case <-until:
			return batch
		}
	}
	return batch
}

// deliverBatch hands kms to the batch handler in one call, each message in
// its own consumer span; when that fails, or a message is not a
// CloudEvent, it delivers them one at a time instead (deliver). It returns
// the first error deliver returns, after which the rest of kms is left
// undelivered (the session ends and they are redelivered).
func (c *Consumer) deliverBatch(ctx context.Context, kms []kafkago.Message) error {
	if c.cfg.Batch == nil || len(kms) == 1 {
		return c.deliverEach(ctx, kms)
	}
	msgs := make([]Message, len(kms))
	for i, km := range kms {
		m, err := c.decode(km)
		if err != nil {
			return c.deliverEach(ctx, kms) // the policies decide about it
		}
		msgs[i] = m
	}
	ctxs := make([]context.Context, len(kms))
	spans := make([]trace.Span, len(kms))
	for i, km := range kms {
		ctxs[i], spans[i] = c.startSpan(ctx, km, msgs[i])
	}
	start := time.Now()
	err := c.cfg.Batch.HandleBatch(ctxs, msgs)
	took := time.Since(start)
	size := attribute.Int("messaging.batch.message_count", len(kms))
	ok := metric.WithAttributes(attribute.String("outcome", "ok"))
	for i, span := range spans {
		span.SetAttributes(size, attribute.Int("messaging.delivery_attempt", 1))
		if err != nil {
			// Not the message's failure yet: it is handled again alone.
			span.AddEvent("batch failed, handled alone", trace.WithAttributes(attribute.String("error", err.Error())))
		} else {
			attrs := metric.WithAttributes(semconvTopicGroup(kms[i].Topic, c.cfg.Group)...)
			c.processed.Record(ctxs[i], took.Seconds(), attrs, ok)
			c.consumed.Add(ctxs[i], 1, attrs, ok)
			c.obs.log.DebugContext(ctxs[i], "message handled", "topic", kms[i].Topic, "type", msgs[i].Type, "id", msgs[i].ID,
				"duration", took, "batch", len(kms))
		}
		span.End()
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // stopping: redelivered after the restart
	}
	c.obs.log.WarnContext(ctx, "batch failed, handling its messages one at a time", "messages", len(kms), "error", err)
	return c.deliverEach(ctx, kms)
}

func (c *Consumer) deliverEach(ctx context.Context, kms []kafkago.Message) error {
	for _, km := range kms {
		if err := c.deliver(ctx, km); err != nil {
			return err
		}
	}
	return nil
}
