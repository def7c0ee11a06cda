// Package guard composes the resilience policies around one outgoing
// call, in the order that makes each do its job:
//
//	bulkhead → retry (with budget) → breaker → the call (with its timeout)
//
// The bulkhead bounds how many calls wait on the dependency at all; each
// retry attempt passes the breaker, so an open breaker stops retries at
// once; the breaker sees every real call's outcome. Any policy may be
// left nil (zero Guard: a plain call).
package guard

import (
	"context"
	"errors"

	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/retry"
)

// Guard is the policies for one kind of call.
type Guard struct {
	Bulkhead *bulkhead.Bulkhead
	Retry    retry.Policy // zero: one attempt
	Breaker  *breaker.Breaker
}

// Do runs fn under the policies.
func (g Guard) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	call := fn
	if g.Breaker != nil {
		call = func(ctx context.Context) error { return g.Breaker.Do(ctx, fn) }
	}
	attempts := func(ctx context.Context) error {
		p := g.Retry
		if p.Retryable != nil {
			inner := p.Retryable
			p.Retryable = func(err error) bool { return !errors.Is(err, breaker.ErrOpen) && inner(err) }
		}
		return p.Do(ctx, call)
	}
	if g.Bulkhead != nil {
		return g.Bulkhead.Do(ctx, attempts)
	}
	return attempts(ctx)
}

// Rejected reports whether err means the call was refused locally (breaker
// open or bulkhead full) without reaching the dependency.
func Rejected(err error) bool {
	return errors.Is(err, breaker.ErrOpen) || errors.Is(err, bulkhead.ErrFull)
}
