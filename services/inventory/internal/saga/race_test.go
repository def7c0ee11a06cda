package saga_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/internal/inventorydb"
	"github.com/example/sagasuite/services/inventory/internal/saga"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// stocked is a database with every product's stock at stock, the
// handlers on it, and inventory's inbox.
func stocked(t *testing.T, stock int64) (*pgxpool.Pool, *inventorydb.Store, *saga.Handlers, *inbox.Inbox) {
	t.Helper()
	ctx := context.Background()
	pool := postgrestest.Pool(t, map[string]fs.FS{"inventory": inventorydb.Migrations(), "outbox": outbox.Migrations(), "inbox": inbox.Migrations()})
	store := inventorydb.New(pool)
	if _, err := store.SeedIfEmpty(ctx, catalog.Seed(stock)); err != nil {
		t.Fatal(err)
	}
	h, err := saga.New(store, observe.Discard())
	if err != nil {
		t.Fatal(err)
	}
	in, err := inbox.Setup(ctx, pool, observe.Discard(), inbox.Config{Consumer: "inventory"})
	if err != nil {
		t.Fatal(err)
	}
	return pool, store, h, in
}

// placed is a store with one order reserved (two of SKU-0001 out of
// ten) through the handlers, and how to deliver more events to them.
func placed(t *testing.T) (*pgxpool.Pool, *inventorydb.Store, func(typ, topic string, data any)) {
	t.Helper()
	ctx := context.Background()
	pool, store, h, in := stocked(t, 10)
	handle := in.Handler(h.Routes())
	deliver := func(typ, topic string, data any) {
		t.Helper()
		ev, err := kafka.NewEvent(typ, "/test", "o-1", data)
		if err != nil {
			t.Fatal(err)
		}
		if err := handle.Handle(ctx, kafka.Message{Event: ev, Topic: topic}); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	deliver(orderevents.Placed, orderevents.Topic, orderevents.OrderPlaced{OrderID: "o-1", CustomerID: "c", TotalCents: 200, Currency: "EUR",
		Items: []orderevents.Item{{SKU: "SKU-0001", Quantity: 2, UnitPriceCents: 100}}, Payment: orderevents.Payment{Token: "t", CardLast4: "4242"}})
	return pool, store, deliver
}

// The reservation expires (a lagging consumer, a slow payment) and then
// the payment is authorized after all. Inventory does not commit stock it
// no longer holds, and announces no commit: orders confirms only on
// inventory.committed, so the order is cancelled by inventory.expired and
// payments refunds it. Stock is conserved throughout. (Before, orders
// confirmed on payments.authorized: CONFIRMED + AUTHORIZED + RELEASED.)
func TestAPaymentAfterTheReservationExpiredCommitsNothing(t *testing.T) {
	pool, store, deliver := placed(t)
	ctx := context.Background()
	x, err := saga.NewExpiry(store, observe.Discard(), saga.ExpiryConfig{TTL: time.Nanosecond, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if n, err := x.Scan(ctx, 0); err != nil || n != 1 {
		t.Fatalf("expiry released %d orders (%v), want 1", n, err)
	}
	deliver(paymentevents.Authorized, paymentevents.Topic, paymentevents.PaymentOutcome{OrderID: "o-1", PaymentID: "p-1", AmountCents: 200})

	// A payment after the expiry commits nothing: stock back, nothing sold.
	ended(t, pool, store, "inventory.reserved,inventory.expired,inventory.released", 10, 0, catalog.Released)
}

// The other order of the same race: the expiry scan reads an order as
// expired, the payment commits it before the expiry locks it (the lagging
// consumer catches up), and only then does the expiry act on what it read.
// Committed stock is sold and the order confirmed: the expiry must leave it
// alone. (Before, it released committed stock: CONFIRMED + AUTHORIZED +
// RELEASED, seen once in make chaos.)
func TestTheExpiryNeverReleasesWhatAPaymentCommittedSinceItsScan(t *testing.T) {
	pool, store, deliver := placed(t)
	ctx := context.Background()
	x, err := saga.NewExpiry(store, observe.Discard(), saga.ExpiryConfig{TTL: time.Nanosecond, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	scanned, err := store.Expired(ctx, time.Now(), 100)
	if err != nil || len(scanned) != 1 {
		t.Fatalf("scan found %v (%v), want o-1", scanned, err)
	}
	deliver(paymentevents.Authorized, paymentevents.Topic, paymentevents.PaymentOutcome{OrderID: "o-1", PaymentID: "p-1", AmountCents: 200})
	released, err := x.Expire(ctx, 0, scanned[0])
	if err != nil || released {
		t.Fatalf("expiry released %v (%v): the order was committed after the scan and must keep its stock", released, err)
	}

	// The commit and no expiry: the two units are sold.
	ended(t, pool, store, "inventory.reserved,inventory.committed", 8, 2, catalog.Committed)
}

// ended checks what inventory announced (event types, in order), SKU-0001's
// stock (of ten, none left reserved) and o-1's reservation status.
func ended(t *testing.T, pool *pgxpool.Pool, store *inventorydb.Store, announced string, available, committed int64, status string) {
	t.Helper()
	if got := strings.Join(postgrestest.Strings(t, pool, `SELECT event_type FROM outbox ORDER BY id`), ","); got != announced {
		t.Fatalf("announced %s, want %s", got, announced)
	}
	p, err := store.Product(context.Background(), "SKU-0001")
	if err != nil || p.Available != available || p.Reserved != 0 || p.Committed != committed {
		t.Fatalf("SKU-0001 %+v %v, want %d available and %d sold", p, err, available, committed)
	}
	rs, _ := store.Reservations(context.Background(), "o-1")
	if len(rs) != 1 || rs[0].Status != status {
		t.Fatalf("reservations %+v, want one %s", rs, status)
	}
}
