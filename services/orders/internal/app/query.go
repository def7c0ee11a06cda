package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/services/orders/internal/order"
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
// An order the read model does not have yet (the projector lags a few
// milliseconds behind a write) is rebuilt from its event stream, so the
// Location of a 202 answers at once: read-after-write for the single
// order, whatever the lag. Only an order with no events is not found.
func (s *Orders) Get(ctx context.Context, id string, minPosition int64) (order.Order, error) {
	if err := s.catchUp(ctx, minPosition); err != nil {
		return order.Order{}, err
	}
	o, err := s.reader.Get(ctx, id)
	if errors.Is(err, order.ErrNotFound) {
		return s.store.Current(ctx, id)
	}
	return o, err
}

// Await returns the order once it has left PENDING, or as it stands when
// stop is closed (the client's wait is over, or the server is draining).
// It is woken by the projector applying an event that ends the order
// (order.TerminalTypes), so a thousand waiting clients cost no queries
// while nothing happens to their orders. The event itself is the
// outcome: applied to the order as read (when it is the very next
// version), it gives what the read model now holds, so a saga costs its
// waiting client one read, the first. Where another replica runs the
// projector, it reads again every awaitPoll instead.
//
// An order the read model does not have yet is usually one placed a moment
// ago: where this replica projects, Await first gives the projector
// projectionGrace to apply it (a client that follows its POST with
// ?wait= costs no rebuild from the event stream and no read while it is
// PENDING), then rebuilds it as Get does.
func (s *Orders) Await(ctx context.Context, id string, stop <-chan struct{}) (order.Order, error) {
	stream := order.StreamID(id)
	var seen int64 // the version last read; the watches fire on anything newer
	graced := false
	for {
		// Watch before reading, so that an event applied between the read
		// and the wait still wakes us (at worst once too often).
		ended, unwatch := s.proj.Watch(stream, seen, order.TerminalTypes...)
		var projected <-chan eventstore.Event // nil: never, once graced
		unwatchProjected := func() {}
		if !graced {
			projected, unwatchProjected = s.proj.Watch(stream, seen)
		}
		o, err := s.reader.Get(ctx, id)
		if errors.Is(err, order.ErrNotFound) && !graced && s.proj.Active() {
			select {
			case e := <-projected:
				// In the read model now: as the event made it, and
				// PENDING unless the same step ended it (then ended
				// holds that event too). No read.
				if placed, ok := next(order.Order{}, e); ok {
					err, o = nil, placed
				} else {
					err, o = nil, order.Order{ID: id, Status: order.Pending}
				}
			case <-time.After(projectionGrace):
			case <-stop:
			case <-ctx.Done():
			}
		}
		graced = true // once: an order the read model still lacks is rebuilt
		unwatchProjected()
		if errors.Is(err, order.ErrNotFound) {
			o, err = s.store.Current(ctx, id)
		}
		if err != nil || o.Status != order.Pending {
			unwatch()
			return o, err
		}
		seen = o.Version
		var poll <-chan time.Time
		if !s.proj.Active() {
			poll = time.After(awaitPoll)
		}
		select {
		case e := <-ended:
			if done, ok := next(o, e); ok {
				unwatch()
				return done, nil
			}
		case <-poll:
		case <-stop:
			unwatch()
			return s.Get(ctx, id, 0) // as it stands now
		case <-ctx.Done():
			unwatch()
			return o, ctx.Err()
		}
		unwatch()
	}
}

// next is o after e, the event the projector applied after it, as the
// read model holds it: when e is o's very next version (no event in
// between that o's read did not see) and decodes. Otherwise ok is false,
// and the caller reads the order instead.
func next(o order.Order, e eventstore.Event) (order.Order, bool) {
	if e.Version != o.Version+1 {
		return o, false
	}
	ev, err := order.Decode(e.Type, e.Schema, e.OccurredAt, e.Data)
	if err != nil || o.Apply(ev) != nil {
		return o, false
	}
	return o, true
}

// awaitPoll is how often Await reads an order whose events this replica
// does not project.
const awaitPoll = 100 * time.Millisecond

// projectionGrace is how long Await waits for the projector to apply an
// order it does not have yet before rebuilding it from its events: the
// projector is milliseconds behind a write.
const projectionGrace = 100 * time.Millisecond

// List returns a page of the read model, once it holds minPosition.
func (s *Orders) List(ctx context.Context, f Filter, minPosition int64) ([]order.Order, string, error) {
	if err := s.catchUp(ctx, minPosition); err != nil {
		return nil, "", err
	}
	return s.reader.List(ctx, f)
}

// AsOf rebuilds an order from its events as it stood at t.
func (s *Orders) AsOf(ctx context.Context, id string, t time.Time) (order.Order, error) {
	return s.history.AsOf(ctx, id, t)
}

// Events returns an order's event stream, or order.ErrNotFound.
func (s *Orders) Events(ctx context.Context, id string) ([]eventstore.Event, error) {
	events, err := s.history.Events(ctx, id)
	if err == nil && len(events) == 0 {
		err = fmt.Errorf("%s: %w", id, order.ErrNotFound)
	}
	return events, err
}
