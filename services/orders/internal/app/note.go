package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/services/orders/internal/order"
)

// ErrVersionConflict means the order changed since the version the client
// sent, or kept changing under the command.
var ErrVersionConflict = errors.New("the order was changed by someone else")

// NoteRequest adds a note to an order's audit trail.
type NoteRequest struct {
	OrderID   string
	Text      string
	Author    string
	IfVersion int64 // the version the client saw (If-Match); 0: any
	RequestID string
}

// conflictRetries is how often a command without IfVersion reloads and
// decides again after losing a race, with jittered backoff so racers
// spread out instead of colliding again.
const conflictRetries = 10

// AddNote appends a note. With IfVersion the command is refused when the
// order moved on; without it, a lost race is retried on the fresh state.
func (s *Orders) AddNote(ctx context.Context, req NoteRequest) (Result, error) {
	if bad := order.ValidateNote(req.Text, req.Author); len(bad) > 0 {
		return Result{}, &InvalidError{Fields: bad}
	}
	for attempt := 0; ; attempt++ {
		var res Result
		var err error
		res.Order, res.Position, err = s.store.Update(ctx, req.OrderID, map[string]string{"causation_type": "http", "causation_id": req.RequestID},
			func(o *order.Order) ([]order.Event, error) {
				if req.IfVersion > 0 && o.Version != req.IfVersion {
					return nil, fmt.Errorf("order is at version %d, not %d: %w", o.Version, req.IfVersion, ErrVersionConflict)
				}
				return []order.Event{o.AddNote(req.Text, req.Author, s.now().UTC())}, nil
			})
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, eventstore.ErrVersionConflict) && req.IfVersion == 0 && attempt < conflictRetries:
			backoff := time.Duration(rand.Int64N(int64(min(time.Millisecond<<attempt, 50*time.Millisecond)) + 1)) // #nosec G404 -- backoff jitter, not a secret
			select {
			case <-ctx.Done():
				return Result{}, ctx.Err()
			case <-time.After(backoff):
			}
			continue
		case errors.Is(err, eventstore.ErrVersionConflict):
			return Result{}, fmt.Errorf("%w: %w", ErrVersionConflict, err)
		}
		return Result{}, err
	}
}
