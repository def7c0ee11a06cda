// Package apptest is the one suite every implementation of orders' command
// ports (app.Store and app.Idempotency) must pass: ordersdb (the event
// store on PostgreSQL) and appfake (memory) run it, as Watermill runs one
// Pub/Sub suite on every backend, so the fake the use-case tests rely on
// cannot drift from the real store. It pins what the use cases rely on:
// an order created once per idempotency key, the key's owner and
// fingerprint kept, changes decided on the current order and applied
// whole, positions that only grow, ErrNotFound for an unknown order.
package apptest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/order"
)

// Store is an implementation under test.
type Store interface {
	app.Store
	app.Idempotency
}

// Run runs the suite; open returns an empty store for each case.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Run("creates an order once per key", func(t *testing.T) { once(t, open(t)) })
	t.Run("applies decided events whole", func(t *testing.T) { update(t, open(t)) })
}

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
)

func placed(id string) order.Event {
	return order.Place(id, "c-1", []order.Item{{SKU: "SKU-0001", Quantity: 2, UnitPriceCents: 150}}, "4242", t0)
}

func once(t *testing.T, s Store) {
	key := &app.IdempotencyKey{Key: "k-1", Fingerprint: []byte{1, 2, 3}}
	o, pos, err := s.Create(ctx, placed("o-1"), key, nil)
	if err != nil || o.ID != "o-1" || o.Status != order.Pending || o.TotalCents != 300 || pos <= 0 {
		t.Fatalf("create: %+v at %d, %v", o, pos, err)
	}
	if _, _, err := s.Create(ctx, placed("o-2"), &app.IdempotencyKey{Key: "k-1", Fingerprint: []byte{9}}, nil); !errors.Is(err, app.ErrKeyTaken) {
		t.Fatalf("a second order with the key: %v, want ErrKeyTaken", err)
	}
	if _, err := s.Current(ctx, "o-2"); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("the refused order exists: %v", err)
	}
	owner, fp, found, err := s.KeyOwner(ctx, "k-1")
	if err != nil || !found || owner != "o-1" || string(fp) != string([]byte{1, 2, 3}) {
		t.Fatalf("key owner %q %v %v %v, want o-1 with the first fingerprint", owner, fp, found, err)
	}
	if _, _, found, err := s.KeyOwner(ctx, "k-none"); err != nil || found {
		t.Fatalf("an unknown key has an owner: %v %v", found, err)
	}
	o2, pos2, err := s.Create(ctx, placed("o-3"), nil, nil)
	if err != nil || o2.ID != "o-3" || pos2 <= pos {
		t.Fatalf("create without a key: %+v at %d (after %d), %v", o2, pos2, pos, err)
	}
}

func update(t *testing.T, s Store) {
	if _, _, err := s.Create(ctx, placed("o-1"), nil, nil); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, _, err := s.Update(ctx, "o-1", nil, func(o *order.Order) ([]order.Event, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("a refused decision: %v, want its error", err)
	}
	if _, _, err := s.Update(ctx, "o-1", nil, func(o *order.Order) ([]order.Event, error) { return nil, nil }); err != nil {
		t.Fatalf("a decision with nothing to do: %v", err)
	}
	at := t0.Add(time.Second)
	o, pos, err := s.Update(ctx, "o-1", nil, func(o *order.Order) ([]order.Event, error) {
		if o.Status != order.Pending {
			return nil, fmt.Errorf("decided on %s, want the current PENDING order", o.Status)
		}
		note := o.AddNote("checked", "ops", at)
		confirmed, err := o.Confirm(at)
		return []order.Event{note, confirmed}, err
	})
	if err != nil || o.Status != order.Confirmed || o.Notes != 1 || pos <= 0 {
		t.Fatalf("update: %+v at %d, %v", o, pos, err)
	}
	cur, err := s.Current(ctx, "o-1")
	if err != nil || cur.Status != order.Confirmed || cur.Notes != 1 || cur.Version != o.Version {
		t.Fatalf("current %+v %v, want what the update returned (%+v)", cur, err, o)
	}
	if _, _, err := s.Update(ctx, "o-1", nil, func(o *order.Order) ([]order.Event, error) {
		e, err := o.Cancel("late", at)
		return []order.Event{e}, err
	}); err == nil {
		t.Fatal("a confirmed order was cancelled")
	}
	if _, _, err := s.Update(ctx, "o-none", nil, func(*order.Order) ([]order.Event, error) { return nil, nil }); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("update of an unknown order: %v, want ErrNotFound", err)
	}
	if _, err := s.Current(ctx, "o-none"); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("current of an unknown order: %v, want ErrNotFound", err)
	}
}
