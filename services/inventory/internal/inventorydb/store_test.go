package inventorydb_test

import (
	"context"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/inventory/internal/app"
	"github.com/example/sagasuite/services/inventory/internal/app/apptest"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/internal/inventorydb"
)

func newStore(t *testing.T, stock int64) (*inventorydb.Store, func(f func(tx pgx.Tx) error) error) {
	t.Helper()
	pool := postgrestest.Pool(t, map[string]fs.FS{"inventory": inventorydb.Migrations(), "outbox": outbox.Migrations()})
	s := inventorydb.New(pool)
	if seeded, err := s.SeedIfEmpty(context.Background(), catalog.Seed(stock)); err != nil || !seeded {
		t.Fatalf("seed: %v %v", seeded, err)
	}
	if seeded, err := s.SeedIfEmpty(context.Background(), catalog.Seed(stock)); err != nil || seeded {
		t.Fatalf("second seed must do nothing: %v %v", seeded, err)
	}
	return s, func(f func(tx pgx.Tx) error) error { return pgx.BeginFunc(context.Background(), pool, f) }
}

// The use cases on PostgreSQL: the same suite appfake passes.
func TestUseCasesOnPostgreSQL(t *testing.T) {
	apptest.Run(t, func(t *testing.T) apptest.Stock {
		pool := postgrestest.Pool(t, map[string]fs.FS{"inventory": inventorydb.Migrations(), "outbox": outbox.Migrations()})
		s := inventorydb.New(pool)
		if _, err := s.SeedIfEmpty(context.Background(), catalog.Seed(10)); err != nil {
			t.Fatal(err)
		}
		return pgStock{Store: s, pool: pool}
	})
}

type pgStock struct {
	*inventorydb.Store
	pool *pgxpool.Pool
}

func (p pgStock) InTx(ctx context.Context, f func(app.Tx) error) error {
	return p.Store.InTx(ctx, func(tx pgx.Tx) error { return f(p.In(tx)) })
}

func (p pgStock) Announced(t *testing.T) []string {
	return postgrestest.Strings(t, p.pool, `SELECT event_type FROM outbox ORDER BY id`)
}

// Many orders racing for little stock: exactly as many win as there is
// stock, none oversells, and lock ordering keeps them from deadlocking.
func TestConcurrentReservationsNeverOversell(t *testing.T) {
	s, tx := newStore(t, 25)
	ctx := context.Background()
	var wins, losses atomic.Int64
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Opposite SKU orders in half the orders would deadlock without sorted locks.
			items := []catalog.Item{{SKU: "SKU-0001", Quantity: 1}, {SKU: "SKU-0002", Quantity: 1}}
			if i%2 == 0 {
				items[0], items[1] = items[1], items[0]
			}
			var reserved bool
			err := tx(func(tx pgx.Tx) error {
				var err error
				reserved, err = app.Reserve(ctx, s.In(tx), fmt.Sprintf("o-%d", i), items)
				return err
			})
			switch {
			case err != nil:
				t.Errorf("order %d: %v", i, err)
			case reserved:
				wins.Add(1)
			default:
				losses.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 25 || losses.Load() != 35 {
		t.Fatalf("%d won, %d lost; want 25 and 35", wins.Load(), losses.Load())
	}
	for _, sku := range []string{"SKU-0001", "SKU-0002"} {
		p, _ := s.Product(ctx, sku)
		if p.Available != 0 || p.Reserved != 25 {
			t.Fatalf("%s: %+v", sku, p)
		}
	}
}
