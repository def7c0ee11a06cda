package retry_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/retry"
)

var errTransient = errors.New("503")

func TestRetriesRetryableErrorsOnly(t *testing.T) {
	p := retry.Policy{Attempts: 4, Base: time.Millisecond, Retryable: func(err error) bool { return errors.Is(err, errTransient) }}
	var n int
	err := p.Do(context.Background(), func(context.Context) error {
		n++
		if n < 3 {
			return errTransient
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("err %v after %d calls", err, n)
	}
	n = 0
	permanent := errors.New("400")
	if err := p.Do(context.Background(), func(context.Context) error { n++; return permanent }); !errors.Is(err, permanent) || n != 1 {
		t.Fatalf("non-retryable: %v after %d calls", err, n)
	}
	n = 0
	if err := p.Do(context.Background(), func(context.Context) error { n++; return errTransient }); !errors.Is(err, errTransient) || n != 4 {
		t.Fatalf("always failing: %v after %d calls, want 4", err, n)
	}
}

// A storm: 1,000 calls to a dead dependency with 3 attempts each would make
// 3,000 calls; the budget keeps retries near 10% of calls.
func TestBudgetCapsARetryStorm(t *testing.T) {
	now := time.Unix(0, 0)
	budget, _ := retry.NewBudget(observe.Discard(), retry.BudgetSettings{Name: "dep", Ratio: 0.1, PerSecond: 1, Now: func() time.Time { return now }})
	p := retry.Policy{Attempts: 3, Base: time.Nanosecond, Budget: budget, Retryable: func(error) bool { return true }}
	var calls atomic.Int64
	for range 1000 {
		err := p.Do(context.Background(), func(context.Context) error { calls.Add(1); return errTransient })
		if !errors.Is(err, errTransient) {
			t.Fatal(err)
		}
	}
	retries := calls.Load() - 1000
	if retries > 1000/10+10 { // ratio, plus the initial reserve
		t.Fatalf("%d retries for 1,000 calls: the budget did not hold", retries)
	}
	if retries < 50 {
		t.Fatalf("only %d retries: the budget should still allow about 10%%", retries)
	}
	t.Logf("%d calls for 1,000 requests (%d retries)", calls.Load(), retries)
}
