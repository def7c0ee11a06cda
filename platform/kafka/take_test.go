package kafka

import (
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// take hands over what is waiting, and waits for more only when told to
// gather (a busy worker): a message a moment away then joins the batch,
// and without gather it does not.
func TestTakeGathersOnlyWhenTold(t *testing.T) {
	q := make(chan kafkago.Message, 4)
	q <- kafkago.Message{Offset: 2}
	if b := take(kafkago.Message{Offset: 1}, q, 32, 0); len(b) != 2 {
		t.Fatalf("took %d messages, want the one given and the one waiting", len(b))
	}
	later := func() {
		time.Sleep(20 * time.Millisecond)
		q <- kafkago.Message{Offset: 4}
	}
	go later()
	if b := take(kafkago.Message{Offset: 3}, q, 32, 0); len(b) != 1 {
		t.Fatalf("without gather: %d messages, want 1 (nothing was waiting)", len(b))
	}
	<-q // the late one
	go later()
	start := time.Now()
	if b := take(kafkago.Message{Offset: 3}, q, 32, 5*time.Second); len(b) != 2 {
		t.Fatalf("gathering: %d messages, want the late one too", len(b))
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("returned before the late message came")
	}
	q <- kafkago.Message{Offset: 5}
	if b := take(kafkago.Message{Offset: 4}, q, 2, 5*time.Second); len(b) != 2 {
		t.Fatalf("a full batch: %d messages, want 2 (at once)", len(b))
	}
}

// collect takes what is handled within the interval, so one commit
// request serves it all; it returns at once when the session ends, and
// without an interval it takes only what is already there.
func TestCollectWaitsTheIntervalUnlessTheSessionEnds(t *testing.T) {
	var noted []int64
	note := func(m kafkago.Message) { noted = append(noted, m.Offset) }
	completed := make(chan kafkago.Message, 4)
	completed <- kafkago.Message{Offset: 1}
	go func() {
		time.Sleep(20 * time.Millisecond)
		completed <- kafkago.Message{Offset: 2}
	}()
	start := time.Now()
	collect(completed, 100*time.Millisecond, note)
	if len(noted) != 2 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("noted %v after %v: want both, after the interval", noted, time.Since(start))
	}

	noted = nil
	go func() {
		time.Sleep(20 * time.Millisecond)
		completed <- kafkago.Message{Offset: 3}
	}()
	collect(completed, -1, note)
	if len(noted) != 0 {
		t.Fatalf("no interval: noted %v, want nothing (nothing was there)", noted)
	}
	<-completed // the late one

	go func() {
		time.Sleep(20 * time.Millisecond)
		close(completed)
	}()
	start = time.Now()
	collect(completed, time.Minute, note)
	if time.Since(start) > 10*time.Second {
		t.Fatal("waited out the interval after the session ended")
	}
}
