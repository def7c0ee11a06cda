package breaker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/observe"
)

var errDown = errors.New("dependency down")

func TestOpensFailsFastProbesAndCloses(t *testing.T) {
	b, err := breaker.New(observe.Discard(), breaker.Settings{Name: "dep", Failures: 3, OpenFor: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var calls atomic.Int64
	failing := func(context.Context) error { calls.Add(1); return errDown }
	for range 3 {
		if err := b.Do(ctx, failing); !errors.Is(err, errDown) {
			t.Fatalf("closed breaker: %v", err)
		}
	}
	if b.State() != "open" {
		t.Fatalf("after 3 failures: %s", b.State())
	}
	for range 10 {
		if err := b.Do(ctx, failing); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("open breaker: %v, want ErrOpen", err)
		}
	}
	if calls.Load() != 3 {
		t.Fatalf("%d calls reached the dependency, want 3: an open breaker must not call it", calls.Load())
	}
	time.Sleep(120 * time.Millisecond)
	if err := b.Do(ctx, func(context.Context) error { calls.Add(1); return nil }); err != nil {
		t.Fatalf("half-open probe: %v", err)
	}
	if b.State() != "closed" || calls.Load() != 4 {
		t.Fatalf("after a good probe: %s, %d calls", b.State(), calls.Load())
	}
}

func TestFailedProbeReopens(t *testing.T) {
	b, _ := breaker.New(observe.Discard(), breaker.Settings{Name: "dep", Failures: 1, OpenFor: 50 * time.Millisecond})
	ctx := context.Background()
	_ = b.Do(ctx, func(context.Context) error { return errDown })
	time.Sleep(60 * time.Millisecond)
	if err := b.Do(ctx, func(context.Context) error { return errDown }); !errors.Is(err, errDown) {
		t.Fatalf("probe: %v", err)
	}
	if b.State() != "open" {
		t.Fatalf("after a failed probe: %s", b.State())
	}
}

func TestCallerCancellationIsNotAFailure(t *testing.T) {
	b, _ := breaker.New(observe.Discard(), breaker.Settings{Name: "dep", Failures: 2})
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := b.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	}
	if b.State() != "closed" {
		t.Fatalf("callers giving up opened the breaker: %s", b.State())
	}
}

func TestIsFailureFiltersErrors(t *testing.T) {
	notMine := errors.New("card declined")
	b, _ := breaker.New(observe.Discard(), breaker.Settings{Name: "dep", Failures: 2, IsFailure: func(err error) bool { return !errors.Is(err, notMine) }})
	for range 5 {
		_ = b.Do(context.Background(), func(context.Context) error { return notMine })
	}
	if b.State() != "closed" {
		t.Fatalf("business errors opened the breaker: %s", b.State())
	}
}

// BenchmarkBreakerAndBulkhead is the overhead a guarded call pays over a
// direct one. Target: under 2 µs.
func BenchmarkBreakerAndBulkhead(b *testing.B) {
	br, _ := breaker.New(observe.Discard(), breaker.Settings{Name: "bench"})
	bh, _ := bulkhead.New(observe.Discard(), bulkhead.Settings{Name: "bench", MaxConcurrent: 64})
	ctx := context.Background()
	nop := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := br.Do(ctx, func(ctx context.Context) error { return bh.Do(ctx, nop) }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
