package readmodel_test

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/platform/projection"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/internal/ordersdb"
	"github.com/example/sagasuite/services/orders/internal/readmodel"
)

// Every query of orders' read model and of its repository reads a
// million orders through an index: reads, lists, the load shedder's count
// and the watchdog's scan stay as fast with history as without.
func TestEveryQueryUsesAnIndexAtAMillionOrders(t *testing.T) {
	ctx := context.Background()
	// A million orders, nearly all finished; customers with a hundred each.
	pool := postgrestest.Large(t, map[string]fs.FS{"orders": ordersdb.Migrations(), "eventstore": eventstore.Migrations(),
		"outbox": outbox.Migrations(), "projection": projection.Migrations(), "readmodel": readmodel.Migrations()}, `INSERT INTO order_summaries (order_id, customer_id, status, items, total_cents, currency, version, created_at, updated_at)
		SELECT 'o-' || g, 'c-' || (g % 10000), CASE WHEN g % 1000 = 0 THEN 'PENDING' ELSE 'CONFIRMED' END, '[]', 100, 'USD', 2,
		       now() - make_interval(secs => 1000000 - g), now()
		FROM generate_series(0, 999999) g;
		INSERT INTO idempotency_keys (key, fingerprint, order_id) SELECT 'k-' || g, '\x00', 'o-' || g FROM generate_series(0, 999999) g`,
		"order_summaries", "idempotency_keys")

	rpool, rec := postgrestest.Recording(t, pool)
	q, err := readmodel.Setup(ctx, rpool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Get(ctx, "o-4242"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []app.Filter{{Limit: 20}, {CustomerID: "c-42", Limit: 20}, {Status: order.Confirmed, Limit: 20}} {
		_, next, err := q.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		f.Cursor = next
		if _, _, err := q.List(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Pending(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Stalled(ctx, time.Now().Add(-30*time.Second), 100); err != nil {
		t.Fatal(err)
	}
	repo, err := ordersdb.New(rpool, observe.Discard(), ordersdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := repo.KeyOwner(ctx, "k-4242"); err != nil {
		t.Fatal(err)
	}
	postgrestest.NoSeqScans(t, pool, rec.Statements(), "order_summaries", "idempotency_keys")
}
