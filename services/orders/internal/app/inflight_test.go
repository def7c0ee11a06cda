package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/example/sagasuite/platform/admission"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/app/appfake"
)

type pending struct {
	*appfake.Store
	n int64
}

func (p pending) Pending(context.Context) (int64, error) { return p.n, nil }

type waiting struct{ placed, all int64 }

func (w waiting) Waiting(context.Context) (int64, int64, error) { return w.placed, w.all, nil }

// Orders whose orders.placed waits in the outbox (Kafka is away) are not
// sagas in flight: nothing works on them yet, so they do not count
// against the limit, and orders keep being accepted while the broker is
// paused, until the outbox holds BacklogLimit rows.
func TestAnOutboxWaitingForKafkaIsNotWorkInFlight(t *testing.T) {
	for _, tt := range []struct {
		name                  string
		pending, placed, rows int64
		want                  error
	}{
		{"a paused broker: 300 pending, 290 of them still in the outbox", 300, 290, 290, nil},
		{"the suite is behind: 300 sagas under way", 300, 0, 3, admission.ErrOverloaded},
		{"the outbox is full", 300, 290, 5000, admission.ErrOverloaded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := appfake.NewStore()
			limiter, err := admission.New(observe.Discard(), admission.Settings{Initial: 100, Min: 10, Max: 1000})
			if err != nil {
				t.Fatal(err)
			}
			inflight, err := app.NewInFlight(pending{store, tt.pending}, waiting{tt.placed, tt.rows}, observe.Discard(), app.InFlightConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := inflight.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			orders, err := app.New(app.Deps{Store: store, Idempotency: store, History: store, Reader: store, Projection: appfake.Projection{},
				Quoter: appfake.Quoter{PriceList: prices}, Tokenizer: appfake.Tokenizer{}, Limiter: limiter, InFlight: inflight},
				observe.Discard(), app.Config{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = orders.Place(context.Background(), request(""))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("place: %v, want %v", err, tt.want)
			}
		})
	}
}
