package app_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/app/appfake"
	"github.com/example/sagasuite/services/orders/internal/order"
)

// laggingReadModel is a read model the projector fills a moment after
// each write: Get misses an order until project copies it from the store,
// and project wakes the watchers as the real projector does.
type laggingReadModel struct {
	*appfake.Store // the event store's view; Current counts the rebuilds
	rebuilds       atomic.Int64

	reads atomic.Int64

	mu       sync.Mutex
	rows     map[string]order.Order
	watchers []fakeWatch
}

type fakeWatch struct {
	types []string
	ch    chan eventstore.Event
}

func (r *laggingReadModel) Current(ctx context.Context, id string) (order.Order, error) {
	r.rebuilds.Add(1)
	return r.Store.Current(ctx, id)
}

func (r *laggingReadModel) Get(_ context.Context, id string) (order.Order, error) {
	r.reads.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.rows[id]
	if !ok {
		return o, order.ErrNotFound
	}
	return o, nil
}

// project copies order id to the read model, as the projector applying
// its latest event, of type typ, and hands that event to the watchers
// that wait for it.
func (r *laggingReadModel) project(t *testing.T, id, typ string) {
	o, err := r.Store.Current(context.Background(), id)
	if err != nil {
		t.Error(err)
		return
	}
	var data any = order.Finished{Reason: o.Reason}
	if typ == order.TypePlaced {
		data = order.Placed{OrderID: o.ID, CustomerID: o.CustomerID, Items: o.Items, TotalCents: o.TotalCents, Currency: o.Currency}
	}
	raw, schema, err := order.Encode(order.Event{Type: typ, Data: data})
	if err != nil {
		t.Error(err)
		return
	}
	e := eventstore.Event{StreamID: order.StreamID(id), Version: o.Version, Type: typ, Schema: schema, Data: raw, OccurredAt: o.UpdatedAt}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows[id] = o
	kept := r.watchers[:0]
	for _, w := range r.watchers {
		if len(w.types) == 0 || slices.Contains(w.types, typ) {
			w.ch <- e
		} else {
			kept = append(kept, w)
		}
	}
	r.watchers = kept
}

func (r *laggingReadModel) WaitFor(context.Context, int64) error { return nil }
func (r *laggingReadModel) Active() bool                         { return true }
func (r *laggingReadModel) Watch(_ string, _ int64, types ...string) (<-chan eventstore.Event, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := fakeWatch{types: types, ch: make(chan eventstore.Event, 1)}
	r.watchers = append(r.watchers, w)
	return w.ch, func() {}
}

// A client that follows its POST with ?wait= before the projector has
// applied the order waits for the projection: Await rebuilds nothing
// from the event stream, reads nothing while the order is PENDING, and
// answers with the outcome the projector's event carries, as the read
// model holds it: one read in all, the first. An order nobody placed is
// still not found, after the grace.
func TestAwaitWaitsForTheProjectionOfANewOrder(t *testing.T) {
	store := appfake.NewStore()
	rm := &laggingReadModel{Store: store, rows: map[string]order.Order{}}
	orders, err := app.New(app.Deps{Store: rm, Idempotency: store, History: store, Reader: rm, Projection: rm,
		Quoter: appfake.Quoter{PriceList: prices}, Tokenizer: appfake.Tokenizer{}}, observe.Discard(), app.Config{PlaceTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := orders.Place(ctx, request(""))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Order.ID
	go func() {
		time.Sleep(20 * time.Millisecond) // the projector's lag
		rm.project(t, id, order.TypePlaced)
		if _, _, err := store.Update(ctx, id, nil, func(o *order.Order) ([]order.Event, error) {
			e, err := o.Confirm(time.Now())
			return []order.Event{e}, err
		}); err != nil {
			t.Error(err)
		}
		time.Sleep(20 * time.Millisecond)
		rm.project(t, id, order.TypeConfirmed)
	}()
	stop := make(chan struct{})
	time.AfterFunc(10*time.Second, func() { close(stop) })
	o, err := orders.Await(ctx, id, stop)
	if err != nil || o.Status != order.Confirmed {
		t.Fatalf("Await: %+v %v, want CONFIRMED", o, err)
	}
	if held, _ := rm.Get(ctx, id); !reflect.DeepEqual(o, held) {
		t.Fatalf("Await answered\n%+v\nthe read model holds\n%+v", o, held)
	}
	rm.reads.Add(-1) // that check's
	if n := rm.rebuilds.Load(); n != 0 {
		t.Fatalf("Await rebuilt the order from its events %d times, want 0: the projection was a moment away", n)
	}
	if n := rm.reads.Load(); n > 1 {
		t.Fatalf("Await read the read model %d times, want 1 at most: the first read (the outcome comes with its event)", n)
	}
	if _, err := orders.Await(ctx, "no-such-order", stop); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("Await of an unknown order: %v, want order.ErrNotFound", err)
	}
}
