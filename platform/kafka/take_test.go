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
