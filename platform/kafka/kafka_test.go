package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/kafkatest"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/observe/observetest"
)

type env struct {
	brokers []string
	topic   string
	pub     *kafka.Publisher
	spans   *tracetest.SpanRecorder
	obs     observe.Bundle
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{brokers: kafkatest.Brokers(t), topic: fmt.Sprintf("test.%s.%d", t.Name(), time.Now().UnixNano())}
	e.spans = tracetest.NewSpanRecorder()
	e.obs = observetest.With(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans)), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, e.brokers, 1, e.topic); err != nil {
		t.Fatal(err)
	}
	var err error
	e.pub, err = kafka.NewPublisher(e.obs, kafka.PublisherConfig{Brokers: e.brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.pub.Close() })
	return e
}

// consume runs a consumer with the retry and dead-letter policies in the
// background until the test ends.
func (e *env) consume(t *testing.T, group string, h kafka.HandlerFunc) {
	t.Helper()
	e.run(t, kafka.ConsumerConfig{Group: group, Policies: []kafka.Middleware{retry(t, 100*time.Millisecond), kafka.DeadLetter(e.pub)}}, h)
}

func event(t *testing.T, typ, key string, data any) kafka.Event {
	t.Helper()
	ev, err := kafka.NewEvent(typ, "/test", key, data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestPublishConsumeCarriesEventAndTrace(t *testing.T) {
	e := newEnv(t)
	got := make(chan kafka.Message, 10)
	e.consume(t, "g-"+e.topic, func(ctx context.Context, m kafka.Message) error {
		got <- m
		return nil
	})
	ctx, parent := e.obs.TracerProvider.Tracer("test").Start(context.Background(), "request")
	sent := event(t, "test.happened", "k-1", map[string]int{"n": 1})
	if err := e.pub.Publish(ctx, e.topic, sent); err != nil {
		t.Fatal(err)
	}
	parent.End()

	m := waitMessage(t, got)
	if m.ID != sent.ID || m.Type != sent.Type || m.Source != sent.Source || m.Key != "k-1" || string(m.Data) != `{"n":1}` {
		t.Fatalf("received %+v, sent %+v", m.Event, sent)
	}
	if !m.Time.Equal(sent.Time) {
		t.Errorf("time %v, sent %v", m.Time, sent.Time)
	}
	// send span is a child of the request; process span is a child of send.
	send := findSpan(t, e.spans, "send "+e.topic)
	process := findSpan(t, e.spans, "process "+e.topic)
	if send.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("send span parent %s, want request %s", send.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	if process.Parent().SpanID() != send.SpanContext().SpanID() || process.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("process span parent %s trace %s, want send %s trace %s", process.Parent().SpanID(),
			process.SpanContext().TraceID(), send.SpanContext().SpanID(), parent.SpanContext().TraceID())
	}
	if send.SpanKind() != trace.SpanKindProducer || process.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kinds %v %v", send.SpanKind(), process.SpanKind())
	}
	attrs := map[string]string{}
	for _, a := range process.Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	for k, v := range map[string]string{"messaging.system": "kafka", "messaging.destination.name": e.topic,
		"messaging.operation.type": "process", "messaging.message.id": sent.ID, "messaging.consumer.group.name": "g-" + e.topic} {
		if attrs[k] != v {
			t.Errorf("process span %s = %q, want %q", k, attrs[k], v)
		}
	}
}

func TestEventTraceOverridesContext(t *testing.T) {
	e := newEnv(t)
	_, origin := e.obs.TracerProvider.Tracer("test").Start(context.Background(), "origin")
	origin.End()
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpan(context.Background(), origin), carrier)
	ev := event(t, "test.happened", "k", 1)
	ev.Trace = carrier
	if err := e.pub.Publish(context.Background(), e.topic, ev); err != nil {
		t.Fatal(err)
	}
	send := findSpan(t, e.spans, "send "+e.topic)
	if send.Parent().SpanID() != origin.SpanContext().SpanID() {
		t.Fatalf("send span parent %s, want the saved context %s", send.Parent().SpanID(), origin.SpanContext().SpanID())
	}
}

func TestTransientErrorsAreRetriedInOrder(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	attempts := map[string]int{}
	var order []string
	done := make(chan struct{})
	e.consume(t, "g-"+e.topic, func(ctx context.Context, m kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[m.ID]++
		if string(m.Data) == `"first"` && attempts[m.ID] < 3 {
			return errors.New("database briefly away")
		}
		order = append(order, string(m.Data))
		if len(order) == 2 {
			close(done)
		}
		return nil
	})
	if err := e.pub.Publish(context.Background(), e.topic, event(t, "t", "same-key", "first"), event(t, "t", "same-key", "second")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("messages not processed")
	}
	mu.Lock()
	defer mu.Unlock()
	if order[0] != `"first"` || order[1] != `"second"` {
		t.Fatalf("order %v: a retried message must not be overtaken by the next one of its key", order)
	}
}

func TestUnprocessableMessagesGoToDLQAndConsumptionGoesOn(t *testing.T) {
	e := newEnv(t)
	good := make(chan kafka.Message, 10)
	e.consume(t, "g-"+e.topic, func(ctx context.Context, m kafka.Message) error {
		if m.Type == "unknown.type" {
			return kafka.Permanent(fmt.Errorf("unknown event type %q", m.Type))
		}
		good <- m
		return nil
	})
	ctx := context.Background()
	// Raw writes to one partition, so "good" is behind every poison message.
	w := &kafkago.Writer{Addr: kafkago.TCP(e.brokers...), Topic: e.topic, Balancer: &kafkago.Murmur2Balancer{}, BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	valid := event(t, "x", "k", 1)
	header := func(skip string, override map[string]string) []kafkago.Header {
		var hs []kafkago.Header
		for k, v := range map[string]string{"ce_specversion": "1.0", "ce_id": "id-" + skip, "ce_type": "t.ok", "ce_source": "/test", "ce_time": valid.Time.Format(time.RFC3339Nano)} {
			if k == skip {
				continue
			}
			if o, ok := override[k]; ok {
				v = o
			}
			hs = append(hs, kafkago.Header{Key: k, Value: []byte(v)})
		}
		return hs
	}
	poison := []kafkago.Message{
		{Key: []byte("k"), Value: []byte(`{not json`), Headers: header("", nil)},
		{Key: []byte("k"), Value: []byte(`{}`), Headers: header("ce_id", nil)},
		{Key: []byte("k"), Value: []byte(`{}`), Headers: header("ce_type", nil)},
		{Key: []byte("k"), Value: []byte(`{}`), Headers: header("", map[string]string{"ce_specversion": "0.3"})},
		{Key: []byte("k"), Value: []byte(`{}`), Headers: header("", map[string]string{"ce_type": "unknown.type"})},
		// A well-formed event of a known type, from a client that is not
		// the topic's producer (Sources: only /test writes it).
		{Key: []byte("k"), Value: []byte(`{"forged":true}`), Headers: header("", map[string]string{"ce_source": "/payments"})},
	}
	if err := w.WriteMessages(ctx, poison...); err != nil {
		t.Fatal(err)
	}
	goodEvent := event(t, "t.ok", "k", "good")
	if err := e.pub.Publish(ctx, e.topic, goodEvent); err != nil {
		t.Fatal(err)
	}
	if m := waitMessage(t, good); m.ID != goodEvent.ID {
		t.Fatalf("got %s, want the good message %s", m.ID, goodEvent.ID)
	}

	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: e.brokers, Topic: e.topic + ".dlq", GroupID: "dlq-reader-" + e.topic,
		StartOffset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond, SessionTimeout: 6 * time.Second})
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for i, p := range poison {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Fatalf("dlq message %d: %v", i, err)
		}
		reason := ""
		for _, h := range m.Headers {
			if h.Key == kafka.HeaderDLQReason {
				reason = string(h.Value)
			}
		}
		if reason == "" || string(m.Value) != string(p.Value) || string(m.Key) != "k" {
			t.Errorf("dlq message %d: value %q reason %q, want value %q and a reason", i, m.Value, reason, p.Value)
		}
		if string(p.Value) == `{"forged":true}` && !strings.Contains(reason, `ce_source "/payments"`) {
			t.Errorf("the forged event was dead-lettered for %q, want its ce_source", reason)
		}
		t.Logf("dlq %d: %s", i, reason)
	}
	// Each dead letter is sent under its own producer span, a child of the
	// consumer span that gave up on the message.
	var sends int
	for _, sp := range e.spans.Ended() {
		if sp.Name() == "send "+e.topic+".dlq" {
			sends++
			if !sp.Parent().IsValid() || sp.SpanKind() != trace.SpanKindProducer {
				t.Errorf("dead-letter span %v: want a producer span under the consumer's", sp.Parent())
			}
		}
	}
	if sends != len(poison) {
		t.Errorf("%d dead-letter spans, want %d", sends, len(poison))
	}
}

func TestUncommittedMessageIsRedeliveredAfterRestart(t *testing.T) {
	e := newEnv(t)
	group := "g-" + e.topic
	ev := event(t, "t", "k", 1)
	if err := e.pub.Publish(context.Background(), e.topic, ev); err != nil {
		t.Fatal(err)
	}
	// First consumer fails the message forever, then stops.
	failing := make(chan struct{}, 100)
	fail := kafka.HandlerFunc(func(ctx context.Context, m kafka.Message) error {
		failing <- struct{}{}
		return errors.New("down")
	})
	c, err := kafka.NewConsumer(fail, observe.Discard(), kafka.ConsumerConfig{Brokers: e.brokers, Group: group, Topics: []string{e.topic}, Sources: map[string]string{e.topic: "/test"},
		Policies: []kafka.Middleware{retry(t, 50*time.Millisecond), kafka.DeadLetter(e.pub)}, SessionTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-failing:
	case <-time.After(20 * time.Second):
		t.Fatal("first consumer got nothing")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The second one gets it again: nothing was committed.
	got := make(chan kafka.Message, 1)
	e.consume(t, group, func(ctx context.Context, m kafka.Message) error {
		got <- m
		return nil
	})
	if m := waitMessage(t, got); m.ID != ev.ID {
		t.Fatalf("redelivered %s, want %s", m.ID, ev.ID)
	}
}

func waitMessage(t *testing.T, ch <-chan kafka.Message) kafka.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no message within 20 s")
		return kafka.Message{}
	}
}

func findSpan(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range rec.Ended() {
			if s.Name() == name {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no span %q", name)
	return nil
}

// After the fix, a redrive sends the dead letter back to its topic: the
// consumer processes it (same ce_id), and the redrive span links to the
// trace of the first delivery. A second redrive finds nothing left.
func TestRedriveSendsDeadLettersBackAfterTheFix(t *testing.T) {
	e := newEnv(t)
	if err := kafka.EnsureTopics(context.Background(), e.brokers, 1, e.topic+".dlq"); err != nil {
		t.Fatal(err)
	}
	var fixed atomic.Bool
	got := make(chan kafka.Message, 10)
	e.consume(t, "g-"+e.topic, func(ctx context.Context, m kafka.Message) error {
		if !fixed.Load() {
			return kafka.Permanent(errors.New("a bug the next release fixes"))
		}
		got <- m
		return nil
	})
	tracer := e.obs.TracerProvider.Tracer("test")
	ctx, span := tracer.Start(context.Background(), "original request")
	original := span.SpanContext().TraceID()
	ev := event(t, "t.ok", "k", "payload")
	if err := e.pub.Publish(ctx, e.topic, ev); err != nil {
		t.Fatal(err)
	}
	span.End()
	// Wait until it is dead-lettered.
	deadline := time.Now().Add(15 * time.Second)
	for !deadLettered(e.spans) {
		if time.Now().After(deadline) {
			t.Fatal("the message was not dead-lettered")
		}
		time.Sleep(20 * time.Millisecond)
	}

	fixed.Store(true)
	res, err := kafka.Redrive(context.Background(), kafka.RedriveConfig{Brokers: e.brokers, DLQ: e.topic + ".dlq",
		Publisher: e.pub, Group: "redrive-" + e.topic, Idle: time.Second})
	if err != nil || res.Redriven != 1 || res.ByTopic[e.topic] != 1 {
		t.Fatalf("redrive: %+v %v", res, err)
	}
	m := waitMessage(t, got)
	if m.ID != ev.ID || string(m.Data) != `"payload"` {
		t.Fatalf("redriven message %s %s, want %s", m.ID, m.Data, ev.ID)
	}
	redrive := findSpan(t, e.spans, "redrive "+e.topic)
	if len(redrive.Links()) != 1 || redrive.Links()[0].SpanContext.TraceID() != original {
		t.Fatalf("redrive span links %+v, want a link to trace %s", redrive.Links(), original)
	}
	again, err := kafka.Redrive(context.Background(), kafka.RedriveConfig{Brokers: e.brokers, DLQ: e.topic + ".dlq",
		Publisher: e.pub, Group: "redrive-" + e.topic, Idle: time.Second})
	if err != nil || again.Redriven != 0 {
		t.Fatalf("second redrive: %+v %v: each dead letter goes back once", again, err)
	}
}

func deadLettered(rec *tracetest.SpanRecorder) bool {
	for _, s := range rec.Ended() {
		if strings.HasPrefix(s.Status().Description, "dead-lettered") {
			return true
		}
	}
	return false
}

// Lag is the messages a group has not committed: all of them before it
// consumes, none once it has.
func TestGroupLagCountsWhatTheGroupHasNotCommitted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 5 {
		if err := e.pub.Publish(ctx, e.topic, event(t, "t.ok", "k", i)); err != nil {
			t.Fatal(err)
		}
	}
	group := "lag-" + e.topic
	lag, err := kafka.GroupLag(ctx, e.brokers, group, []string{e.topic})
	if err != nil || lag[e.topic][0] != 5 {
		t.Fatalf("before consuming: %v %v, want 5 behind", lag, err)
	}
	got := make(chan kafka.Message, 10)
	e.consume(t, group, func(ctx context.Context, m kafka.Message) error { got <- m; return nil })
	for range 5 {
		waitMessage(t, got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		lag, err = kafka.GroupLag(ctx, e.brokers, group, []string{e.topic})
		if err == nil && lag[e.topic][0] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after consuming: %v %v, want 0 behind", lag, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A failure marked Hopeless (data the database refuses) is tried a few
// times, then dead-lettered, and the message behind it on the same key
// goes on: a message that can never apply does not stop its partition.
func TestHopelessFailuresAreDeadLetteredAfterAFewTries(t *testing.T) {
	e := newEnv(t)
	var tries atomic.Int32
	good := make(chan kafka.Message, 1)
	e.consume(t, "g-"+e.topic, func(ctx context.Context, m kafka.Message) error {
		if string(m.Data) == `"poison"` {
			tries.Add(1)
			return kafka.Hopeless(errors.New("duplicate key value violates unique constraint"))
		}
		good <- m
		return nil
	})
	next := event(t, "t", "same-key", "next")
	if err := e.pub.Publish(context.Background(), e.topic, event(t, "t", "same-key", "poison"), next); err != nil {
		t.Fatal(err)
	}
	if m := waitMessage(t, good); m.ID != next.ID {
		t.Fatalf("got %s, want the message behind the poison", m.ID)
	}
	if n := tries.Load(); n != kafka.HopelessTries {
		t.Fatalf("the hopeless message was tried %d times, want %d", n, kafka.HopelessTries)
	}
	if !deadLettered(e.spans) {
		t.Fatal("the hopeless message was not dead-lettered")
	}
}

// A redriven message that still fails is dead-lettered again; the run
// stops at the end the DLQ had when it began instead of sending it round
// again until it idles.
func TestRedriveStopsAtTheEndOfTheDLQ(t *testing.T) {
	e := newEnv(t)
	if err := kafka.EnsureTopics(context.Background(), e.brokers, 1, e.topic+".dlq"); err != nil {
		t.Fatal(err)
	}
	var deliveries atomic.Int32
	e.consume(t, "g-"+e.topic, func(ctx context.Context, m kafka.Message) error {
		deliveries.Add(1)
		return kafka.Permanent(errors.New("still broken"))
	})
	if err := e.pub.Publish(context.Background(), e.topic, event(t, "t.ok", "k", "payload")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !deadLettered(e.spans) {
		if time.Now().After(deadline) {
			t.Fatal("the message was not dead-lettered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	began := time.Now()
	res, err := kafka.Redrive(context.Background(), kafka.RedriveConfig{Brokers: e.brokers, DLQ: e.topic + ".dlq",
		Publisher: e.pub, Group: "redrive-" + e.topic, Idle: 20 * time.Second})
	if err != nil || res.Redriven != 1 {
		t.Fatalf("redrive: %+v %v, want the one dead letter sent back once", res, err)
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Fatalf("redrive took %v: it waited to idle instead of stopping at the DLQ's end", took)
	}
}

// retry is kafka.Retry with a bundle that reports nowhere.
func retry(t testing.TB, maxBackoff time.Duration) kafka.Middleware {
	t.Helper()
	m, err := kafka.Retry(observe.Discard(), maxBackoff)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
