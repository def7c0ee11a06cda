package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/kafka"
)

// A busy worker hands what is waiting to the batch handler in one call,
// keeping each key's order; a batch that fails is handled again one
// message at a time, so every message is applied exactly once.
func TestBatchesKeepKeyOrderAndFallBackOneByOne(t *testing.T) {
	e := newEnv(t)
	gate := make(chan struct{})
	var gateOnce sync.Once
	wait := func() { gateOnce.Do(func() { <-gate }) } // the first call waits until all is published
	var mu sync.Mutex
	var applied []string // key/n of every message applied, in order
	var sizes []int      // sizes of the batches handled
	failedBatches := 0
	body := func(m kafka.Message) string {
		var n int
		_ = json.Unmarshal(m.Data, &n)
		return fmt.Sprintf("%s/%d", m.Key, n)
	}
	batch := kafka.BatchFunc(func(ctxs []context.Context, msgs []kafka.Message) error {
		wait()
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(msgs))
		for _, m := range msgs {
			if body(m) == "k2/3" { // fails in a batch (a deadlock, say): none of the batch applies
				failedBatches++
				return errors.New("deadlock detected")
			}
		}
		for _, m := range msgs {
			applied = append(applied, body(m))
		}
		return nil
	})
	e.run(t, kafka.ConsumerConfig{Group: "g-" + e.topic, Workers: 1, Batch: batch, MaxBatch: 8},
		func(_ context.Context, m kafka.Message) error {
			wait()
			mu.Lock()
			defer mu.Unlock()
			applied = append(applied, body(m))
			return nil
		})
	const keys, each = 4, 10
	var events []kafka.Event
	for n := range each {
		for k := range keys {
			events = append(events, event(t, "t", fmt.Sprintf("k%d", k), n))
		}
	}
	if err := e.pub.Publish(context.Background(), e.topic, events...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let the worker's queue fill behind the first message
	close(gate)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(applied)
		mu.Unlock()
		if n >= keys*each {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages applied", n, keys*each)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // anything applied twice shows now
	mu.Lock()
	defer mu.Unlock()
	if len(applied) != keys*each {
		t.Fatalf("%d messages applied, want each of the %d once: %v", len(applied), keys*each, applied)
	}
	next := map[string]int{}
	for _, a := range applied {
		var k string
		var n int
		_, _ = fmt.Sscanf(a, "k%1s/%d", &k, &n)
		if n != next[k] {
			t.Fatalf("key k%s: applied %d when %d was due: order lost in %v", k, n, next[k], applied)
		}
		next[k]++
	}
	big := 0
	for _, s := range sizes {
		big = max(big, s)
	}
	if big < 2 || big > 8 {
		t.Fatalf("batch sizes %v: want batches of the waiting messages, at most MaxBatch 8", sizes)
	}
	if failedBatches != 1 {
		t.Fatalf("%d batches failed, want the one holding k2/3 (then handled alone)", failedBatches)
	}
}
