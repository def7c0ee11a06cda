package guard_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/retry"
)

var errDown = errors.New("down")

// Once the breaker opens, retries stop: the dependency sees no more calls.
func TestOpenBreakerStopsRetries(t *testing.T) {
	br, _ := breaker.New(observe.Discard(), breaker.Settings{Name: "d", Failures: 3, OpenFor: time.Hour})
	bh, _ := bulkhead.New(observe.Discard(), bulkhead.Settings{Name: "d"})
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

// A dependency slower than the caller's budget: every attempt is cut from
// what is left, so the whole call ends within the budget less the reserve,
// the retry still happens, and the breaker counts the slow attempts as
// the dependency's failures (not as the caller giving up).
func TestAttemptsAreCutFromTheCallersBudget(t *testing.T) {
	br, _ := breaker.New(observe.Discard(), breaker.Settings{Name: "slow", Failures: 2, OpenFor: time.Hour})
	g := guard.Guard{Breaker: br, Timeout: 10 * time.Second, Reserve: 100 * time.Millisecond,
		Retry: retry.Policy{Attempts: 2, Base: time.Millisecond, Retryable: func(err error) bool { return errors.Is(err, errDown) }}}
	slow := func(calls *int) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			*calls++
			<-ctx.Done() // answers after any sane deadline
			return fmt.Errorf("%w: %w", errDown, ctx.Err())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	calls := 0
	err := g.Do(ctx, slow(&calls))
	took := time.Since(start)
	if !errors.Is(err, errDown) || calls != 2 {
		t.Fatalf("err %v after %d calls, want 2 timed-out attempts", err, calls)
	}
	if took > 450*time.Millisecond || took < 300*time.Millisecond {
		t.Fatalf("took %v: want the budget less the reserve (400 ms)", took)
	}
	if br.State() != "open" {
		t.Fatalf("breaker %s after 2 timed-out attempts: slow attempts must count as failures", br.State())
	}

	// No time left at all: the dependency is not called.
	br2, _ := breaker.New(observe.Discard(), breaker.Settings{Name: "none", Failures: 1, OpenFor: time.Hour})
	g.Breaker = br2
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	calls = 0
	if err := g.Do(ctx2, slow(&calls)); !errors.Is(err, guard.ErrNoTime) || calls != 0 || br2.State() != "closed" {
		t.Fatalf("no time left: err %v, %d calls, breaker %s", err, calls, br2.State())
	}
}
