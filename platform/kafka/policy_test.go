package kafka_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/kafka"
)

// run starts a consumer with cfg (brokers, topic and observers filled in)
// until the test ends, and waits until the group has assigned it its
// partitions.
func (e *env) run(t *testing.T, cfg kafka.ConsumerConfig, h kafka.HandlerFunc) {
	t.Helper()
	cfg.Brokers, cfg.Topics, cfg.SessionTimeout = e.brokers, []string{e.topic}, 6*time.Second
	cfg.Sources = map[string]string{e.topic: "/test"}
	c, err := kafka.NewConsumer(h, e.obs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for c.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("consumer not assigned within 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Handled messages wait up to CommitInterval to be committed together,
// and are committed when the consumer stops, however long the interval:
// the next member of the group does not receive them again.
func TestHandledMessagesAreCommittedWhenTheConsumerStops(t *testing.T) {
	e := newEnv(t)
	group := "g-" + e.topic
	got := make(chan kafka.Message, 10)
	c, err := kafka.NewConsumer(kafka.HandlerFunc(func(_ context.Context, m kafka.Message) error { got <- m; return nil }), e.obs,
		kafka.ConsumerConfig{Brokers: e.brokers, Group: group, Topics: []string{e.topic}, Sources: map[string]string{e.topic: "/test"},
			SessionTimeout: 6 * time.Second, CommitInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	first := event(t, "t", "k", "first")
	if err := e.pub.Publish(context.Background(), e.topic, first); err != nil {
		t.Fatal(err)
	}
	if m := waitMessage(t, got); m.ID != first.ID {
		t.Fatalf("got %s, want %s", m.ID, first.ID)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	second := event(t, "t", "k", "second")
	if err := e.pub.Publish(context.Background(), e.topic, second); err != nil {
		t.Fatal(err)
	}
	e.run(t, kafka.ConsumerConfig{Group: group}, func(_ context.Context, m kafka.Message) error { got <- m; return nil })
	if m := waitMessage(t, got); m.ID != second.ID {
		t.Fatalf("the next member got %s first, want %s: the handled message was not committed at the stop", m.ID, second.ID)
	}
}

// Without a Retry policy a failed message is not skipped: the session
// ends uncommitted and the rejoined member receives it again, before the
// message behind it.
func TestWithoutPoliciesAFailedMessageIsDeliveredAgain(t *testing.T) {
	e := newEnv(t)
	got := make(chan string, 10)
	var failed atomic.Bool // the handler runs in the workers of successive sessions
	e.run(t, kafka.ConsumerConfig{Group: "g-" + e.topic}, func(_ context.Context, m kafka.Message) error {
		got <- string(m.Data)
		if string(m.Data) == `"a"` && failed.CompareAndSwap(false, true) {
			return errors.New("database unavailable")
		}
		return nil
	})
	if err := e.pub.Publish(context.Background(), e.topic, event(t, "t", "k", "a"), event(t, "t", "k", "b")); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for len(seen) < 3 {
		seen = append(seen, next(t, got))
	}
	if strings.Join(seen, " ") != `"a" "a" "b"` {
		t.Fatalf("handled %v, want a (failed), a again, then b", seen)
	}
}

// next returns what the handler sent on ch next, failing after 20 s.
func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("nothing handled within 20 s")
		return ""
	}
}

// A new group with StartLatest reads only what is written after it
// joined; one with StartEarliest (the default) reads the history too.
func TestStartOffsetOfANewGroup(t *testing.T) {
	e := newEnv(t)
	if err := e.pub.Publish(context.Background(), e.topic, event(t, "t", "k", "history")); err != nil {
		t.Fatal(err)
	}
	latest, earliest := make(chan string, 10), make(chan string, 10)
	e.run(t, kafka.ConsumerConfig{Group: "latest-" + e.topic, StartAt: kafka.StartLatest}, func(_ context.Context, m kafka.Message) error {
		latest <- string(m.Data)
		return nil
	})
	e.run(t, kafka.ConsumerConfig{Group: "earliest-" + e.topic}, func(_ context.Context, m kafka.Message) error {
		earliest <- string(m.Data)
		return nil
	})
	if err := e.pub.Publish(context.Background(), e.topic, event(t, "t", "k", "new")); err != nil {
		t.Fatal(err)
	}
	if got := next(t, latest); got != `"new"` {
		t.Errorf("StartLatest group read %s first, want only what came after it joined", got)
	}
	first := next(t, earliest)
	second := next(t, earliest)
	if first != `"history"` || second != `"new"` {
		t.Errorf("StartEarliest group read %s, %s; want the history first", first, second)
	}
}

// Chain runs the first middleware outermost.
func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) kafka.Middleware {
		return func(next kafka.Handler) kafka.Handler {
			return kafka.HandlerFunc(func(ctx context.Context, m kafka.Message) error {
				order = append(order, name)
				return next.Handle(ctx, m)
			})
		}
	}
	h := kafka.Chain(kafka.HandlerFunc(func(context.Context, kafka.Message) error {
		order = append(order, "handler")
		return nil
	}), mw("outer"), mw("inner"))
	if err := h.Handle(context.Background(), kafka.Message{}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "outer,inner,handler" {
		t.Fatalf("order %v", order)
	}
}
