// Package guard composes the resilience policies around one outgoing
// call, in the order that makes each do its job:
//
//	bulkhead → retry (with budget) → breaker → the call (with its timeout)
//
// The bulkhead bounds how many calls wait on the dependency at all; each
// retry attempt passes the breaker, so an open breaker stops retries at
// once; the breaker sees every real call's outcome. Any policy may be
// left nil (zero Guard: a plain call).
//
// Time is bounded inside the caller's budget: each attempt gets at most
// Timeout, and, when the caller's context has a deadline, at most an even
// share of the time left (less Reserve) among the attempts still
// possible. A slow dependency then costs one attempt's share, leaves time
// for the retry and for the caller's own work after the call, and the
// attempt's own timeout, not the caller's deadline, ends it: so the
// breaker counts it as the dependency's failure.
package guard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/retry"
)

// Guard is the policies for one kind of call.
type Guard struct {
	Bulkhead *bulkhead.Bulkhead
	Retry    retry.Policy // zero: one attempt
	Breaker  *breaker.Breaker
	// Timeout bounds one attempt; 0 means only the caller's deadline does.
	Timeout time.Duration
	// Reserve is time kept back from the caller's deadline for its own
	// work after the call (a database write, the answer); 0 keeps none.
	Reserve time.Duration
}

// ErrNoTime means the caller's deadline left no time for an attempt: the
// dependency was not called.
var ErrNoTime = errors.New("no time left in the caller's budget")

// Do runs fn under the policies.
func (g Guard) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	attempt := 0
	timed := func(ctx context.Context) error {
		attempt++
		d, ok := g.attemptTimeout(ctx, attempt)
		if !ok {
			return fmt.Errorf("attempt %d: %w", attempt, ErrNoTime)
		}
		if d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return fn(ctx)
	}
	call := timed
	if g.Breaker != nil {
		call = func(ctx context.Context) error {
			if _, ok := g.attemptTimeout(ctx, attempt+1); !ok {
				attempt++
				return fmt.Errorf("attempt %d: %w", attempt, ErrNoTime) // not the dependency's fault: the breaker does not see it
			}
			return g.Breaker.Do(ctx, timed)
		}
	}
	attempts := func(ctx context.Context) error {
		p := g.Retry
		if p.Retryable != nil {
			inner := p.Retryable
			p.Retryable = func(err error) bool {
				return !errors.Is(err, breaker.ErrOpen) && !errors.Is(err, ErrNoTime) && inner(err)
			}
		}
		return p.Do(ctx, call)
	}
	if g.Bulkhead != nil {
		return g.Bulkhead.Do(ctx, attempts)
	}
	return attempts(ctx)
}

// attemptTimeout is attempt n's bound (0: none); false when the caller's
// deadline leaves no time for it.
func (g Guard) attemptTimeout(ctx context.Context, n int) (time.Duration, bool) {
	d := g.Timeout
	deadline, ok := ctx.Deadline()
	if !ok {
		return d, true
	}
	left := time.Until(deadline) - g.Reserve
	if left <= 0 {
		return 0, false
	}
	share := left / time.Duration(max(1, g.Retry.Attempts-n+1))
	if d <= 0 || share < d {
		d = share
	}
	return d, true
}

// Rejected reports whether err means the call was refused locally (breaker
// open or bulkhead full) without reaching the dependency.
func Rejected(err error) bool {
	return errors.Is(err, breaker.ErrOpen) || errors.Is(err, bulkhead.ErrFull) || errors.Is(err, ErrNoTime)
}
