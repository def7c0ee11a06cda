package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	kafkago "github.com/segmentio/kafka-go"
)

// CloudEvents binary-mode header names.
const (
	headerSpecVersion = "ce_specversion"
	headerID          = "ce_id"
	headerType        = "ce_type"
	headerSource      = "ce_source"
	headerTime        = "ce_time"
	headerContentType = "content-type"
	// HeaderDLQReason says why a message was dead-lettered.
	HeaderDLQReason = "dlq_reason"
)

// Event is one CloudEvent as carried on Kafka.
type Event struct {
	ID     string    // unique per event; consumers deduplicate on it
	Type   string    // e.g. "orders.placed"
	Source string    // e.g. "/orders"
	Time   time.Time // when the fact happened
	Key    string    // the partition key: events with one key stay in order
	Data   []byte    // JSON
	// Trace is the W3C trace context (traceparent, tracestate) of the work
	// that caused the event, as saved by the outbox. When set, it is the
	// parent of the send span instead of the context passed to Publish.
	Trace map[string]string
}

// NewEvent returns an event with a fresh time-ordered ID, the current time
// and data encoded as JSON.
func NewEvent(typ, source, key string, data any) (Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s event: %w", typ, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("new event id: %w", err)
	}
	return Event{ID: id.String(), Type: typ, Source: source, Time: time.Now().UTC(), Key: key, Data: b}, nil
}

// Message is an event as received, with where it came from.
type Message struct {
	Event
	Topic     string
	Partition int
	Offset    int64
	Headers   []kafkago.Header // all headers as received, trace context included
	// Group is the consumer group that received the message.
	Group string
	// Attempt counts the handlings of this delivery: 1 the first time,
	// then one more for each retry (Retry sets it).
	Attempt int
}

// Decode unmarshals the event data into v. Unknown fields are ignored (a
// tolerant reader: producers may add fields without breaking consumers).
// A failure is permanent: the same bytes will never decode.
func (m Message) Decode(v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return Permanent(fmt.Errorf("decode %s data: %w", m.Type, err))
	}
	return nil
}

func (e Event) headers() []kafkago.Header {
	return []kafkago.Header{
		{Key: headerSpecVersion, Value: []byte("1.0")},
		{Key: headerID, Value: []byte(e.ID)},
		{Key: headerType, Value: []byte(e.Type)},
		{Key: headerSource, Value: []byte(e.Source)},
		{Key: headerTime, Value: []byte(e.Time.UTC().Format(time.RFC3339Nano))},
		{Key: headerContentType, Value: []byte("application/json")},
	}
}

func (e Event) validate() error {
	var errs []error
	if e.ID == "" {
		errs = append(errs, errors.New("empty id"))
	}
	if e.Type == "" {
		errs = append(errs, errors.New("empty type"))
	}
	if e.Source == "" {
		errs = append(errs, errors.New("empty source"))
	}
	if e.Time.IsZero() {
		errs = append(errs, errors.New("zero time"))
	}
	if !json.Valid(e.Data) {
		errs = append(errs, errors.New("data is not JSON"))
	}
	return errors.Join(errs...)
}

// decode reads a received message as a CloudEvent; the error says why it
// can never be processed.
func decode(m kafkago.Message) (Message, error) {
	h := make(map[string]string, len(m.Headers))
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	msg := Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Headers: m.Headers}
	msg.Key, msg.Data = string(m.Key), m.Value
	if v := h[headerSpecVersion]; v != "1.0" {
		return msg, fmt.Errorf("header %s is %q, want 1.0", headerSpecVersion, v)
	}
	for _, k := range []string{headerID, headerType, headerSource, headerTime} {
		if h[k] == "" {
			return msg, fmt.Errorf("header %s is missing", k)
		}
	}
	if ct := h[headerContentType]; ct != "" && ct != "application/json" {
		return msg, fmt.Errorf("content-type %q, want application/json", ct)
	}
	t, err := time.Parse(time.RFC3339Nano, h[headerTime])
	if err != nil {
		return msg, fmt.Errorf("header %s: %w", headerTime, err)
	}
	msg.ID, msg.Type, msg.Source, msg.Time = h[headerID], h[headerType], h[headerSource], t
	if !json.Valid(m.Value) {
		return msg, errors.New("value is not valid JSON")
	}
	return msg, nil
}

// PermanentError marks a failure that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the consumer dead-letters the message instead of
// retrying it: unknown event type, data that does not match its schema.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err was wrapped with Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// HopelessError marks a failure that retrying will most likely not fix,
// though it cannot be sure: the data breaks a constraint or a column's
// range, which a racing writer may still explain the first time.
type HopelessError struct{ Err error }

func (e *HopelessError) Error() string { return e.Err.Error() }
func (e *HopelessError) Unwrap() error { return e.Err }

// Hopeless wraps err so that Retry tries the message only a few times
// (HopelessTries) and then gives up on it as Permanent, so DeadLetter
// parks it and the partition goes on. inbox.Handler marks PostgreSQL's
// data and constraint errors (SQLSTATE classes 22 and 23) so.
func Hopeless(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &HopelessError{Err: err}
}

// IsHopeless reports whether err was wrapped with Hopeless.
func IsHopeless(err error) bool {
	var h *HopelessError
	return errors.As(err, &h)
}

// Validator is event data that can say what a consumer cannot act on:
// the payload structs of the services' published contracts.
type Validator interface{ Validate() error }

// DecodeValid decodes m's data into a T and validates it. Both failures
// are permanent (the same bytes will never do better): the message is
// dead-lettered.
func DecodeValid[T Validator](m Message) (T, error) {
	var v T
	if err := m.Decode(&v); err != nil {
		return v, err
	}
	if err := v.Validate(); err != nil {
		return v, Permanent(fmt.Errorf("%s %s: %w", m.Type, m.ID, err))
	}
	return v, nil
}
