package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/internal/postgres"
)

// ErrReadModelBehind means the read model did not reach the position the
// client asked for within the wait: answer "retry", never older data.
var ErrReadModelBehind = errors.New("the read model has not caught up with that write yet")

// catchUp waits until the read model holds the event at minPosition (0:
// no wait).
func (s *Orders) catchUp(ctx context.Context, minPosition int64) error {
	if minPosition <= 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.readWait)
	defer cancel()
	if err := s.proj.WaitFor(wctx, minPosition); err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return ErrReadModelBehind
		}
		return err
	}
	return nil
}

// Get returns an order from the read model, once it holds minPosition.
func (s *Orders) Get(ctx context.Context, id string, minPosition int64) (order.Order, error) {
	if err := s.catchUp(ctx, minPosition); err != nil {
		return order.Order{}, err
	}
	return s.reader.Get(ctx, id)
}

// List returns a page of the read model, once it holds minPosition.
func (s *Orders) List(ctx context.Context, f postgres.Filter, minPosition int64) ([]order.Order, string, error) {
	if err := s.catchUp(ctx, minPosition); err != nil {
		return nil, "", err
	}
	return s.reader.List(ctx, f)
}

// AsOf rebuilds an order from its events as it stood at t.
func (s *Orders) AsOf(ctx context.Context, id string, t time.Time) (order.Order, error) {
	return s.repo.AsOf(ctx, id, t)
}

// Events returns an order's event stream, or order.ErrNotFound.
func (s *Orders) Events(ctx context.Context, id string) ([]eventstore.Event, error) {
	events, err := s.repo.Events(ctx, id)
	if err == nil && len(events) == 0 {
		err = fmt.Errorf("%s: %w", id, order.ErrNotFound)
	}
	return events, err
}
