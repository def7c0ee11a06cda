package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
)

func consumer(t *testing.T, e *env, group string, workers int, h kafka.HandlerFunc) (*kafka.Consumer, func()) {
	t.Helper()
	c, err := kafka.NewConsumer(h, observe.Discard(), kafka.ConsumerConfig{Brokers: e.brokers, Group: group, Topics: []string{e.topic}, Sources: map[string]string{e.topic: "/test"}, Policies: []kafka.Middleware{retry(t, 50*time.Millisecond), kafka.DeadLetter(e.pub)},
		SessionTimeout: 6 * time.Second, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return c, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	}
}

// Many keys in parallel, each key's messages in order.
func TestWorkersKeepPerKeyOrder(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	seen := map[string][]int{}
	var active, peak int
	total := make(chan struct{}, 1000)
	_, stop := consumer(t, e, "g-"+e.topic, 4, func(ctx context.Context, m kafka.Message) error {
		mu.Lock()
		active++
		peak = max(peak, active)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		var n int
		_, _ = fmt.Sscan(string(m.Data), &n)
		mu.Lock()
		active--
		seen[m.Key] = append(seen[m.Key], n)
		mu.Unlock()
		total <- struct{}{}
		return nil
	})
	defer stop()
	var events []kafka.Event
	for i := range 20 {
		for k := range 8 {
			events = append(events, event(t, "t", fmt.Sprintf("key-%d", k), i))
		}
	}
	if err := e.pub.Publish(context.Background(), e.topic, events...); err != nil {
		t.Fatal(err)
	}
	for range events {
		select {
		case <-total:
		case <-time.After(20 * time.Second):
			t.Fatal("not all messages handled")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for k, ns := range seen {
		for i, n := range ns {
			if n != i {
				t.Fatalf("%s handled in order %v", k, ns)
			}
		}
	}
	if peak < 2 {
		t.Fatalf("at most %d message at a time: the workers did not run in parallel", peak)
	}
}

// A slow message holds the partition's commit back: after a restart it is
// delivered again, even though later messages were handled.
func TestCommitNeverPassesAMessageInFlight(t *testing.T) {
	e := newEnv(t)
	group := "g-" + e.topic
	slow := event(t, "t", "slow-key", "slow")
	fast := event(t, "t", "other-key", "fast")
	fastDone := make(chan struct{}, 1)
	_, stop := consumer(t, e, group, 4, func(ctx context.Context, m kafka.Message) error {
		if m.ID == slow.ID {
			<-ctx.Done() // still working when the consumer stops
			return ctx.Err()
		}
		fastDone <- struct{}{}
		return nil
	})
	// Same partition for both: publish with one key each but force order by one Publish call.
	if err := e.pub.Publish(context.Background(), e.topic, slow, fast); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fastDone:
	case <-time.After(20 * time.Second):
		t.Fatal("fast message not handled")
	}
	stop()
	again := make(chan string, 10)
	_, stop2 := consumer(t, e, group, 4, func(ctx context.Context, m kafka.Message) error {
		again <- m.ID
		return nil
	})
	defer stop2()
	select {
	case id := <-again:
		if id != slow.ID && id != fast.ID {
			t.Fatalf("redelivered %s", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the unfinished message was not redelivered: its offset was committed")
	}
}

func TestPauseStopsFetchingUntilResume(t *testing.T) {
	e := newEnv(t)
	got := make(chan string, 10)
	c, stop := consumer(t, e, "g-"+e.topic, 2, func(ctx context.Context, m kafka.Message) error {
		got <- m.ID
		return nil
	})
	defer stop()
	first := event(t, "t", "k", 1)
	_ = e.pub.Publish(context.Background(), e.topic, first)
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("nothing consumed")
	}
	c.Pause()
	time.Sleep(100 * time.Millisecond) // let the fetch loop see it
	second := event(t, "t", "k", 2)
	_ = e.pub.Publish(context.Background(), e.topic, second)
	select {
	case id := <-got:
		if id == second.ID {
			t.Fatal("a paused consumer handled a new message")
		}
	case <-time.After(500 * time.Millisecond):
	}
	c.Resume()
	select {
	case id := <-got:
		if id != second.ID {
			t.Fatalf("got %s", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("not resumed")
	}
}
