package bulkhead_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/observe"
)

func TestBoundsConcurrencyAndRejectsOverflow(t *testing.T) {
	b, _ := bulkhead.New(observe.Discard(), bulkhead.Settings{Name: "p", MaxConcurrent: 3, MaxQueue: 2, MaxWait: time.Second})
	release := make(chan struct{})
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	results := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- b.Do(context.Background(), func(context.Context) error {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				<-release
				running.Add(-1)
				return nil
			})
		}()
	}
	time.Sleep(100 * time.Millisecond) // 3 run, 2 queue, 5 refused
	close(release)
	wg.Wait()
	close(results)
	ok, full := 0, 0
	for err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, bulkhead.ErrFull):
			full++
		default:
			t.Fatal(err)
		}
	}
	if peak.Load() != 3 || ok != 5 || full != 5 {
		t.Fatalf("peak %d, ok %d, refused %d; want 3, 5, 5", peak.Load(), ok, full)
	}
}

func TestQueuedCallGivesUpAfterMaxWait(t *testing.T) {
	b, _ := bulkhead.New(observe.Discard(), bulkhead.Settings{Name: "p", MaxConcurrent: 1, MaxQueue: 1, MaxWait: 50 * time.Millisecond})
	block := make(chan struct{})
	go func() { _ = b.Do(context.Background(), func(context.Context) error { <-block; return nil }) }()
	time.Sleep(10 * time.Millisecond)
	start := time.Now()
	err := b.Do(context.Background(), func(context.Context) error { return nil })
	close(block)
	if !errors.Is(err, bulkhead.ErrFull) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("queued call: %v after %v", err, time.Since(start))
	}
}

// Two pools: one flooded, the other still serves.
func TestPoolsAreIsolated(t *testing.T) {
	charges, _ := bulkhead.New(observe.Discard(), bulkhead.Settings{Name: "charges", MaxConcurrent: 2})
	refunds, _ := bulkhead.New(observe.Discard(), bulkhead.Settings{Name: "refunds", MaxConcurrent: 2})
	block := make(chan struct{})
	defer close(block)
	for range 2 {
		go func() { _ = charges.Do(context.Background(), func(context.Context) error { <-block; return nil }) }()
	}
	time.Sleep(20 * time.Millisecond)
	if err := charges.Do(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, bulkhead.ErrFull) {
		t.Fatalf("flooded pool: %v", err)
	}
	if err := refunds.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("other pool: %v", err)
	}
}
