package guard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/retry"
)

var errDown = errors.New("down")

// Once the breaker opens, retries stop: the dependency sees no more calls.
func TestOpenBreakerStopsRetries(t *testing.T) {
	br, _ := breaker.New(breaker.Settings{Name: "d", Failures: 3, OpenFor: time.Hour})
	bh, _ := bulkhead.New(bulkhead.Settings{Name: "d"})
	g := guard.Guard{Bulkhead: bh, Breaker: br,
		Retry: retry.Policy{Attempts: 5, Base: time.Microsecond, Retryable: func(err error) bool { return errors.Is(err, errDown) }}}
	calls := 0
	for range 10 {
		err := g.Do(context.Background(), func(context.Context) error { calls++; return errDown })
		if err == nil {
			t.Fatal("want an error")
		}
	}
	if calls != 3 {
		t.Fatalf("%d calls reached the dependency, want 3 (then the breaker opened)", calls)
	}
	if err := g.Do(context.Background(), func(context.Context) error { return nil }); !guard.Rejected(err) {
		t.Fatalf("open breaker: %v, want rejected", err)
	}
	if err := (guard.Guard{}).Do(context.Background(), func(context.Context) error { return errDown }); !errors.Is(err, errDown) {
		t.Fatalf("zero guard: %v", err)
	}
}
