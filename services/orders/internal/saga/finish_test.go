package saga_test

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/orders/internal/announce"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/internal/ordersdb"
	"github.com/example/sagasuite/services/orders/internal/saga"
	"github.com/example/sagasuite/services/orders/orderevents"
)

// The watchdog, a payment outcome and a stock outcome racing on one order:
// exactly one terminal status is stored and announced, whatever the timing.
func TestConcurrentOutcomesFinishAnOrderOnce(t *testing.T) {
	pool, repo := newRepo(t)
	metrics, err := saga.NewMetrics(nil, observe.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	decisions := []func(o *order.Order) (order.Event, error){
		func(o *order.Order) (order.Event, error) { return o.Confirm(time.Now()) },
		func(o *order.Order) (order.Event, error) { return o.Cancel(order.ReasonSagaTimeout, time.Now()) },
		func(o *order.Order) (order.Event, error) { return o.Reject(order.ReasonOutOfStock, time.Now()) },
		func(o *order.Order) (order.Event, error) { return o.Cancel(order.ReasonCardDeclined, time.Now()) },
	}
	for round := range 10 {
		id := "o-" + string(rune('a'+round))
		placed := order.Place(id, "c", []order.Item{{SKU: "A", Quantity: 1, UnitPriceCents: 100}}, "4242", time.Now().UTC())
		msg, _ := announce.Placed(placed, orderevents.Payment{Token: "tok", CardLast4: "4242"})
		if _, _, err := repo.Create(ctx, placed, nil, nil, msg); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wins := make(chan bool, len(decisions))
		for _, decide := range decisions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Optimistic concurrency: a loser retries on the fresh state,
				// as the consumer (redelivery) and the watchdog (next scan) do.
				for {
					var ok bool
					err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						var err error
						ok, err = app.Finish(ctx, repo.In(tx), metrics, id, nil, decide)
						return err
					})
					if errors.Is(err, eventstore.ErrVersionConflict) {
						continue
					}
					if err != nil {
						t.Error(err)
					}
					wins <- ok
					return
				}
			}()
		}
		wg.Wait()
		close(wins)
		n := 0
		for ok := range wins {
			if ok {
				n++
			}
		}
		events, _ := repo.Events(ctx, id)
		view, _ := repo.Current(ctx, id)
		var announced int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_key = $1 AND event_type <> 'orders.placed'`, id).Scan(&announced)
		if n != 1 || len(events) != 2 || view.Version != 2 || view.Status == order.Pending || announced != 1 {
			t.Fatalf("round %d: %d winners, %d events, view %+v, %d announcements; want exactly one of each", round, n, len(events), view, announced)
		}
	}
}

func TestCreateStoresEventKeyAndAnnouncementTogether(t *testing.T) {
	pool, repo := newRepo(t)
	ctx := context.Background()
	placed := order.Place("o-1", "c", []order.Item{{SKU: "A", Quantity: 2, UnitPriceCents: 150}}, "4242", time.Now().UTC())
	msg, _ := announce.Placed(placed, orderevents.Payment{Token: "tok", CardLast4: "4242"})
	key := &app.IdempotencyKey{Key: "k", Fingerprint: []byte{1}}
	o, _, err := repo.Create(ctx, placed, key, nil, msg)
	if err != nil || o.TotalCents != 300 || o.Version != 1 {
		t.Fatalf("create: %+v %v", o, err)
	}
	// The same key again: nothing of the second order is stored.
	second := order.Place("o-2", "c", o.Items, "4242", time.Now().UTC())
	msg2, _ := announce.Placed(second, orderevents.Payment{Token: "tok", CardLast4: "4242"})
	if _, _, err := repo.Create(ctx, second, key, nil, msg2); err != app.ErrKeyTaken {
		t.Fatalf("second create with the key: %v, want ErrKeyTaken", err)
	}
	if _, err := repo.Current(ctx, "o-2"); err == nil {
		t.Fatal("o-2 stored although its key was taken")
	}
	var rows int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&rows)
	if rows != 1 {
		t.Fatalf("%d outbox rows, want 1", rows)
	}
	if id, fp, found, err := repo.KeyOwner(ctx, "k"); err != nil || !found || id != "o-1" || len(fp) != 1 {
		t.Fatalf("key owner: %s %v %v %v", id, fp, found, err)
	}
}

func newRepo(t *testing.T) (*pgxpool.Pool, *ordersdb.Repo) {
	t.Helper()
	pool := postgrestest.Pool(t, map[string]fs.FS{"orders": ordersdb.Migrations(), "eventstore": eventstore.Migrations(), "outbox": outbox.Migrations()})
	repo, err := ordersdb.New(pool, observe.Discard(), ordersdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return pool, repo
}
