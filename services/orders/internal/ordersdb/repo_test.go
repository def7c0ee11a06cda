package ordersdb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/internal/ordersdb"
)

func newRepo(t testing.TB, every int64) (*pgxpool.Pool, *ordersdb.Repo) {
	t.Helper()
	pool := postgrestest.Pool(t, map[string]fs.FS{"orders": ordersdb.Migrations(), "eventstore": eventstore.Migrations(), "outbox": outbox.Migrations()})
	repo, err := ordersdb.New(pool, observe.Discard(), ordersdb.Config{SnapshotEvery: every})
	if err != nil {
		t.Fatal(err)
	}
	return pool, repo
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func create(t testing.TB, repo *ordersdb.Repo, id string) {
	t.Helper()
	placed := order.Place(id, "c", []order.Item{{SKU: "A", Quantity: 2, UnitPriceCents: 150}}, "4242", t0)
	if _, _, err := repo.Create(context.Background(), placed, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func command(t testing.TB, pool *pgxpool.Pool, repo *ordersdb.Repo, id string, decide func(o *order.Order) (order.Event, error)) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		_, _, err := repo.UpdateTx(context.Background(), tx, id, func(o *order.Order) (ordersdb.Decision, error) {
			e, err := decide(o)
			return ordersdb.Decision{Events: []order.Event{e}}, err
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Snapshot + tail equals a full replay, for streams ending in every event
// type and for every length around the snapshot interval.
func TestSnapshotPlusTailEqualsReplay(t *testing.T) {
	pool, repo := newRepo(t, 3)
	ctx := context.Background()
	endings := map[string]func(o *order.Order) (order.Event, error){
		order.TypeConfirmed: func(o *order.Order) (order.Event, error) { return o.Confirm(t0.Add(time.Hour)) },
		order.TypeRejected:  func(o *order.Order) (order.Event, error) { return o.Reject(order.ReasonOutOfStock, t0.Add(time.Hour)) },
		order.TypeCancelled: func(o *order.Order) (order.Event, error) { return o.Cancel(order.ReasonSagaTimeout, t0.Add(time.Hour)) },
	}
	for typ, end := range endings {
		for notes := range 8 {
			id := fmt.Sprintf("%s-%d", typ, notes)
			create(t, repo, id)
			for i := range notes {
				command(t, pool, repo, id, func(o *order.Order) (order.Event, error) {
					return o.AddNote(fmt.Sprintf("note %d", i), "agent", t0.Add(time.Duration(i+1)*time.Minute)), nil
				})
				check(t, repo, id)
			}
			command(t, pool, repo, id, end)
			command(t, pool, repo, id, func(o *order.Order) (order.Event, error) {
				return o.AddNote("after", "agent", t0.Add(2*time.Hour)), nil
			})
			check(t, repo, id)
		}
	}
	var snaps int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM snapshots`).Scan(&snaps)
	if snaps == 0 {
		t.Fatal("no snapshot was taken: the test compared replay with replay")
	}
}

func check(t testing.TB, repo *ordersdb.Repo, id string) {
	t.Helper()
	fromSnapshot, err := repo.Current(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := repo.Replay(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	// Compare as serialised: time.Time values equal in instant may differ
	// in their *Location after a JSON round trip.
	a, _ := json.Marshal(fromSnapshot)
	b, _ := json.Marshal(replayed)
	if string(a) != string(b) {
		t.Fatalf("%s: snapshot+tail %+v\nreplay        %+v", id, fromSnapshot, replayed)
	}
}

// Events stored by the first version of the code (OrderPlaced schema 1,
// no currency) load as the current shape.
func TestStoredSchema1EventsAreUpcast(t *testing.T) {
	pool, repo := newRepo(t, 100)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO events (stream_id, version, type, schema_version, data, metadata, occurred_at)
		VALUES ('order-old', 1, 'OrderPlaced', 1,
		'{"order_id":"old","customer_id":"c","items":[{"sku":"A","quantity":1,"unit_price_cents":500}],"total_cents":500,"card_last4":"4242"}', '{}', now())`)
	if err != nil {
		t.Fatal(err)
	}
	o, err := repo.Current(ctx, "old")
	if err != nil || o.Currency != "USD" || o.TotalCents != 500 {
		t.Fatalf("old order %+v %v", o, err)
	}
	// New commands on an old stream write the current schema.
	command(t, pool, repo, "old", func(o *order.Order) (order.Event, error) { return o.Confirm(time.Now()) })
	events, _ := repo.Events(ctx, "old")
	if len(events) != 2 || events[0].Schema != 1 || events[1].Schema != 1 {
		t.Fatalf("events %+v", events)
	}
	fresh := order.Place("new", "c", nil, "4242", time.Now())
	if _, _, err := repo.Create(ctx, fresh, nil, nil); err != nil {
		t.Fatal(err)
	}
	if events, _ := repo.Events(ctx, "new"); events[0].Schema != 2 {
		t.Fatalf("new OrderPlaced stored as schema %d, want 2", events[0].Schema)
	}
}

func TestTimeTravelAndConflicts(t *testing.T) {
	pool, repo := newRepo(t, 100)
	ctx := context.Background()
	create(t, repo, "o")
	command(t, pool, repo, "o", func(o *order.Order) (order.Event, error) { return o.AddNote("n", "a", t0.Add(time.Minute)), nil })
	command(t, pool, repo, "o", func(o *order.Order) (order.Event, error) { return o.Confirm(t0.Add(time.Hour)) })
	for _, c := range []struct {
		at      time.Time
		version int64
		status  order.Status
	}{{t0, 1, order.Pending}, {t0.Add(30 * time.Minute), 2, order.Pending}, {t0.Add(2 * time.Hour), 3, order.Confirmed}} {
		o, err := repo.AsOf(ctx, "o", c.at)
		if err != nil || o.Version != c.version || o.Status != c.status {
			t.Fatalf("as of %v: %+v %v", c.at, o, err)
		}
	}
	if _, err := repo.AsOf(ctx, "o", t0.Add(-time.Second)); err == nil {
		t.Fatal("an order before its first event")
	}
}

// BenchmarkLoadWithSnapshot loads an aggregate of 1,000 events, the way
// every command does. Target: under 2 ms.
func BenchmarkLoadWithSnapshot(b *testing.B) {
	pool, repo := newRepo(b, 100)
	ctx := context.Background()
	create(b, repo, "long")
	// 998 notes and a confirmation: 1,000 events, written like commands would.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for i := range 999 {
			_, _, err := repo.UpdateTx(ctx, tx, "long", func(o *order.Order) (ordersdb.Decision, error) {
				e := o.AddNote("note", "agent", t0.Add(time.Duration(i)*time.Second))
				if i == 998 {
					var err error
					e, err = o.Confirm(t0.Add(time.Hour))
					if err != nil {
						return ordersdb.Decision{}, err
					}
				}
				return ordersdb.Decision{Events: []order.Event{e}}, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		o, err := repo.Current(ctx, "long")
		if err != nil || o.Version != 1000 {
			b.Fatalf("%+v %v", o.Version, err)
		}
	}
}

// BenchmarkLoadFullReplay is the same load without snapshots, for contrast.
func BenchmarkLoadFullReplay(b *testing.B) {
	_, repo := newRepo(b, 1_000_000)
	ctx := context.Background()
	create(b, repo, "long")
	for i := range 999 {
		err := repo.InTx(ctx, func(tx pgx.Tx) error {
			_, _, err := repo.UpdateTx(ctx, tx, "long", func(o *order.Order) (ordersdb.Decision, error) {
				return ordersdb.Decision{Events: []order.Event{o.AddNote("note", "agent", t0.Add(time.Duration(i)*time.Second))}}, nil
			})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := repo.Replay(ctx, "long"); err != nil {
			b.Fatal(err)
		}
	}
}
