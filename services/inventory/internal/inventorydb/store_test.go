package inventorydb_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/internal/inventorydb"
)

func newStore(t *testing.T, stock int64) (*inventorydb.Store, func(f func(tx pgx.Tx) error) error) {
	t.Helper()
	pool := postgrestest.Pool(t, map[string]fs.FS{"inventory": inventorydb.Migrations()})
	s := inventorydb.New(pool)
	if seeded, err := s.SeedIfEmpty(context.Background(), catalog.Seed(stock)); err != nil || !seeded {
		t.Fatalf("seed: %v %v", seeded, err)
	}
	if seeded, err := s.SeedIfEmpty(context.Background(), catalog.Seed(stock)); err != nil || seeded {
		t.Fatalf("second seed must do nothing: %v %v", seeded, err)
	}
	return s, func(f func(tx pgx.Tx) error) error { return pgx.BeginFunc(context.Background(), pool, f) }
}

func total(p catalog.Product) int64 { return p.Available + p.Reserved + p.Committed }

func TestReserveAllOrNothing(t *testing.T) {
	s, tx := newStore(t, 10)
	ctx := context.Background()
	err := tx(func(tx pgx.Tx) error {
		return s.Reserve(ctx, tx, "o-1", []catalog.Item{{SKU: "SKU-0001", Quantity: 4}, {SKU: "SKU-0002", Quantity: 11}})
	})
	if !errors.Is(err, catalog.ErrOutOfStock) {
		t.Fatalf("short item: %v, want ErrOutOfStock", err)
	}
	err = tx(func(tx pgx.Tx) error {
		return s.Reserve(ctx, tx, "o-2", []catalog.Item{{SKU: "SKU-0001", Quantity: 1}, {SKU: "SKU-0404", Quantity: 1}})
	})
	if !errors.Is(err, catalog.ErrOutOfStock) {
		t.Fatalf("unknown SKU: %v, want ErrOutOfStock", err)
	}
	p, _ := s.Product(ctx, "SKU-0001")
	if p.Available != 10 || p.Reserved != 0 {
		t.Fatalf("a failed reservation took stock: %+v", p)
	}
	if rs, _ := s.Reservations(ctx, "o-1"); len(rs) != 0 {
		t.Fatalf("reservations of a failed order: %+v", rs)
	}
}

func TestCommitAndReleaseConserveStock(t *testing.T) {
	s, tx := newStore(t, 10)
	ctx := context.Background()
	items := []catalog.Item{{SKU: "SKU-0001", Quantity: 3}, {SKU: "SKU-0002", Quantity: 2}}
	step := func(name string, f func(tx pgx.Tx) error, wantAvail, wantRes, wantCommitted int64, wantStatus string) {
		t.Helper()
		if err := tx(f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p, _ := s.Product(ctx, "SKU-0001")
		if p.Available != wantAvail || p.Reserved != wantRes || p.Committed != wantCommitted || total(p) != 10 {
			t.Fatalf("%s: SKU-0001 %+v, want %d/%d/%d", name, p, wantAvail, wantRes, wantCommitted)
		}
		rs, _ := s.Reservations(ctx, "o")
		for _, r := range rs {
			if r.Status != wantStatus {
				t.Fatalf("%s: reservation %+v, want %s", name, r, wantStatus)
			}
		}
	}
	step("reserve", func(tx pgx.Tx) error { return s.Reserve(ctx, tx, "o", items) }, 7, 3, 0, catalog.Reserved)
	step("reserve again", func(tx pgx.Tx) error { return s.Reserve(ctx, tx, "o", items) }, 7, 3, 0, catalog.Reserved)
	step("commit", func(tx pgx.Tx) error { _, err := s.Commit(ctx, tx, "o"); return err }, 7, 0, 3, catalog.Committed)
	step("commit again", func(tx pgx.Tx) error {
		ok, err := s.Commit(ctx, tx, "o")
		if ok {
			return errors.New("committed twice")
		}
		return err
	}, 7, 0, 3, catalog.Committed)
	// A cancellation after the commit gives the sold stock back.
	step("release committed", func(tx pgx.Tx) error { _, err := s.Release(ctx, tx, "o"); return err }, 10, 0, 0, catalog.Released)
	step("release again", func(tx pgx.Tx) error {
		ok, err := s.Release(ctx, tx, "o")
		if ok {
			return errors.New("released twice")
		}
		return err
	}, 10, 0, 0, catalog.Released)
	step("commit after release", func(tx pgx.Tx) error {
		ok, err := s.Commit(ctx, tx, "o")
		if ok {
			return errors.New("committed a released reservation")
		}
		return err
	}, 10, 0, 0, catalog.Released)
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
			err := tx(func(tx pgx.Tx) error { return s.Reserve(ctx, tx, fmt.Sprintf("o-%d", i), items) })
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, catalog.ErrOutOfStock):
				losses.Add(1)
			default:
				t.Errorf("order %d: %v", i, err)
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
