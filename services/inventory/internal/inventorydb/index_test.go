package inventorydb_test

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/inventory/internal/app"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/internal/inventorydb"
)

// Reserving, committing, releasing, listing and the expiry scan read a
// million orders' reservations through an index.
func TestEveryQueryUsesAnIndexAtAMillionReservations(t *testing.T) {
	ctx := context.Background()
	pool := postgrestest.Large(t, map[string]fs.FS{"inventory": inventorydb.Migrations(), "outbox": outbox.Migrations()}, `INSERT INTO products (sku, name, price_cents, available)
		SELECT 'SKU-' || lpad(g::text, 4, '0'), 'product ' || g, 100, 1000000000 FROM generate_series(1, 100) g;
		INSERT INTO reservations (order_id, sku, quantity, status, created_at)
		SELECT 'o-' || g, 'SKU-' || lpad((g % 100 + 1)::text, 4, '0'), 1, CASE WHEN g % 1000 = 0 THEN 'RESERVED' ELSE 'COMMITTED' END,
		       now() - make_interval(secs => 1000000 - g)
		FROM generate_series(0, 999999) g`, "products", "reservations")
	rpool, rec := postgrestest.Recording(t, pool)
	store := inventorydb.New(rpool)
	err := pgx.BeginFunc(ctx, rpool, func(tx pgx.Tx) error {
		stock := store.In(tx)
		if _, err := app.Reserve(ctx, stock, "o-new", []catalog.Item{{SKU: "SKU-0001", Quantity: 1}, {SKU: "SKU-0002", Quantity: 2}}); err != nil {
			return err
		}
		if _, err := app.Commit(ctx, stock, "o-new"); err != nil {
			return err
		}
		_, err := app.Release(ctx, stock, "o-new", "test")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Reservations(ctx, "o-4242"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Products(ctx, []string{"SKU-0001"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Expired(ctx, time.Now().Add(-5*time.Minute), 100); err != nil {
		t.Fatal(err)
	}
	// products is the catalogue: 100 rows, read whole by design.
	postgrestest.NoSeqScans(t, pool, rec.Statements(), "reservations")
}
