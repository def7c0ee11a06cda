// Package kafka publishes and consumes CloudEvents on Kafka with
// segmentio/kafka-go, carrying W3C trace context in the message headers.
//
//   - [Publisher] sends synchronously and waits for every in-sync replica
//     to acknowledge: an error is returned, never swallowed.
//   - [Consumer] runs a consumer group and commits a message's offset only
//     after its handler succeeded, with the others handled within
//     ConsumerConfig.CommitInterval, and at once when it stops. A message that can never be processed
//     (missing CloudEvents headers, invalid JSON, or a handler error wrapped
//     with [Permanent]) goes to "<topic>.dlq" with the reason in the
//     dlq_reason header, and consumption goes on. Other handler errors are
//     retried with backoff, so a database outage delays messages but loses
//     none.
//
// Events use CloudEvents 1.0 binary mode: ce_specversion, ce_id, ce_type,
// ce_source, ce_time and content-type headers, the data as the value, the
// partition key as the message key. Consumers deduplicate on ce_id (see
// package inbox), because delivery is at least once.
package kafka
