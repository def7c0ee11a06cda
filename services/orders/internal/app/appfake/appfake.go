// Package appfake has hand-written, in-memory fakes of the ports app
// declares, for the use cases' unit tests and the HTTP layer's. They keep
// the contracts of the real adapters that the use cases rely on: Create
// refuses a taken idempotency key, Update reports a version conflict when
// told to, Current folds the events.
package appfake

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/order"
)

// Store is app.Store, app.Idempotency, app.History and app.Reader over
// maps: the read model is always caught up.
type Store struct {
	mu       sync.Mutex
	orders   map[string]order.Order
	keys     map[string]app.IdempotencyKey // key → owner's fingerprint, owner in orderOf
	orderOf  map[string]string
	position int64
	// Sent is every outbox message written, in order.
	Sent []outbox.Message
	// Conflicts is how many Updates to fail with
	// eventstore.ErrVersionConflict before one succeeds (a racing writer).
	Conflicts int
	// StealKey, when set, makes the next Create with that key lose the
	// race: another order takes the key just before it.
	StealKey string
	// LateCommit makes Create store the order, then wait for the
	// caller's deadline and fail with it: a COMMIT that landed after the
	// caller gave up on it.
	LateCommit bool
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{orders: map[string]order.Order{}, keys: map[string]app.IdempotencyKey{}, orderOf: map[string]string{}}
}

// Create implements app.Store.
func (s *Store) Create(ctx context.Context, placed order.Event, key *app.IdempotencyKey, _ map[string]string, msgs ...outbox.Message) (order.Order, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var o order.Order
	if err := o.Apply(placed); err != nil {
		return o, 0, err
	}
	if key != nil {
		if key.Key == s.StealKey {
			s.StealKey = ""
			winner := o
			winner.ID = "winner-" + o.ID
			s.orders[winner.ID], s.keys[key.Key], s.orderOf[key.Key] = winner, *key, winner.ID
			return order.Order{}, 0, app.ErrKeyTaken
		}
		if _, taken := s.keys[key.Key]; taken {
			return order.Order{}, 0, app.ErrKeyTaken
		}
		s.keys[key.Key], s.orderOf[key.Key] = *key, o.ID
	}
	s.orders[o.ID] = o
	s.Sent = append(s.Sent, msgs...)
	s.position++
	if s.LateCommit {
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
		return order.Order{}, 0, ctx.Err()
	}
	return o, s.position, nil
}

// Update implements app.Store.
func (s *Store) Update(_ context.Context, id string, _ map[string]string, decide func(o *order.Order) ([]order.Event, error)) (order.Order, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return o, 0, fmt.Errorf("%s: %w", id, order.ErrNotFound)
	}
	events, err := decide(&o)
	if err != nil || len(events) == 0 {
		return o, 0, err
	}
	if s.Conflicts > 0 {
		s.Conflicts--
		return o, 0, eventstore.ErrVersionConflict
	}
	for _, e := range events {
		if err := o.Apply(e); err != nil {
			return o, 0, err
		}
	}
	s.orders[id] = o
	s.position += int64(len(events))
	return o, s.position, nil
}

// Current implements app.Store.
func (s *Store) Current(_ context.Context, id string) (order.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return o, fmt.Errorf("%s: %w", id, order.ErrNotFound)
	}
	return o, nil
}

// KeyOwner implements app.Idempotency.
func (s *Store) KeyOwner(_ context.Context, key string) (string, []byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[key]
	return s.orderOf[key], k.Fingerprint, ok, nil
}

// AsOf implements app.History: the order as it is (the fake keeps no history).
func (s *Store) AsOf(ctx context.Context, id string, _ time.Time) (order.Order, error) {
	return s.Current(ctx, id)
}

// Events implements app.History: none kept.
func (s *Store) Events(context.Context, string) ([]eventstore.Event, error) { return nil, nil }

// Get implements app.Reader.
func (s *Store) Get(ctx context.Context, id string) (order.Order, error) { return s.Current(ctx, id) }

// List implements app.Reader: every order, in no particular order.
func (s *Store) List(context.Context, app.Filter) ([]order.Order, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]order.Order, 0, len(s.orders))
	for _, o := range s.orders {
		out = append(out, o)
	}
	return out, "", nil
}

// Pending implements app.Reader.
func (s *Store) Pending(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, o := range s.orders {
		if o.Status == order.Pending {
			n++
		}
	}
	return n, nil
}

// Projection is app.Projection for a read model that is always caught up.
type Projection struct{}

// WaitFor returns at once.
func (Projection) WaitFor(context.Context, int64) error { return nil }

// Watch never fires.
func (Projection) Watch(string, int64, ...string) (<-chan eventstore.Event, func()) {
	return make(chan eventstore.Event), func() {}
}

// Active reports true.
func (Projection) Active() bool { return true }

// Quoter is app.Quoter over a price list; Err, when set, is every answer.
type Quoter struct {
	PriceList map[string]int64
	Err       error
	// Block, when set, makes each call wait for the caller's deadline.
	Block bool
}

// Prices implements app.Quoter.
func (q Quoter) Prices(ctx context.Context, skus []string) (map[string]int64, error) {
	if q.Block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if q.Err != nil {
		return nil, q.Err
	}
	out := map[string]int64{}
	for _, sku := range skus {
		if p, ok := q.PriceList[sku]; ok {
			out[sku] = p
		}
	}
	return out, nil
}

// Tokenizer is app.Tokenizer; Err, when set, is every answer.
type Tokenizer struct {
	Err   error
	Block bool // wait for the caller's deadline
}

// Tokenize implements app.Tokenizer.
func (t Tokenizer) Tokenize(ctx context.Context, card, _ string, _ int64) (string, error) {
	if t.Block {
		<-ctx.Done()
		return "", ctx.Err()
	}
	if t.Err != nil {
		return "", t.Err
	}
	return "tok-" + card[len(card)-4:], nil
}
