// Package apptest is the one suite every implementation of app.Tx must
// pass: inventorydb (PostgreSQL) and appfake (memory) run it, as
// Watermill runs one Pub/Sub suite on every backend. It drives the use
// cases, so it pins what they see of the port: all-or-nothing holds,
// stock conserved through commit and release, an expiry that spares a
// commit, and transactions that apply whole or not at all.
package apptest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/example/sagasuite/services/inventory/internal/app"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
)

// Stock is an implementation under test, seeded with catalog.Seed(10).
type Stock interface {
	// InTx runs f in one transaction: its changes and events apply whole
	// when f succeeds, not at all when it fails.
	InTx(ctx context.Context, f func(app.Tx) error) error
	Product(ctx context.Context, sku string) (catalog.Product, error)
	Reservations(ctx context.Context, orderID string) ([]catalog.Reservation, error)
	// Announced is the types of the events announced so far, in order.
	Announced(t *testing.T) []string
}

// Run runs the suite; open returns a fresh stock seeded with
// catalog.Seed(10) for each case.
func Run(t *testing.T, open func(t *testing.T) Stock) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s Stock)
	}{
		{"reserves all or nothing", allOrNothing},
		{"conserves stock from reserve to release", lifecycle},
		{"expires only what is still reserved", expiry},
		{"applies a transaction whole or not at all", rollback},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

var ctx = context.Background()

func do[T any](t *testing.T, s Stock, f func(tx app.Tx) (T, error)) T {
	t.Helper()
	var v T
	if err := s.InTx(ctx, func(tx app.Tx) error {
		var err error
		v, err = f(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func stock(t *testing.T, s Stock, sku string, avail, reserved, committed int64) {
	t.Helper()
	p, err := s.Product(ctx, sku)
	if err != nil {
		t.Fatal(err)
	}
	if p.Available != avail || p.Reserved != reserved || p.Committed != committed {
		t.Fatalf("%s: available/reserved/committed %d/%d/%d, want %d/%d/%d", sku, p.Available, p.Reserved, p.Committed, avail, reserved, committed)
	}
}

func statuses(t *testing.T, s Stock, orderID string, want string) {
	t.Helper()
	rs, err := s.Reservations(ctx, orderID)
	if err != nil {
		t.Fatal(err)
	}
	if want == "" && len(rs) > 0 {
		t.Fatalf("%s holds %+v, want nothing", orderID, rs)
	}
	for _, r := range rs {
		if r.Status != want {
			t.Fatalf("%s: %+v, want %s", orderID, r, want)
		}
	}
}

func announced(t *testing.T, s Stock, want ...string) {
	t.Helper()
	if got := s.Announced(t); !slices.Equal(got, want) {
		t.Fatalf("announced %v, want %v", got, want)
	}
}

func allOrNothing(t *testing.T, s Stock) {
	for _, items := range [][]catalog.Item{
		{{SKU: "SKU-0001", Quantity: 4}, {SKU: "SKU-0002", Quantity: 11}}, // one short
		{{SKU: "SKU-0001", Quantity: 1}, {SKU: "SKU-0404", Quantity: 1}},  // one unknown
	} {
		if ok := do(t, s, func(tx app.Tx) (bool, error) { return app.Reserve(ctx, tx, "o-1", items) }); ok {
			t.Fatalf("%v reserved", items)
		}
	}
	stock(t, s, "SKU-0001", 10, 0, 0)
	statuses(t, s, "o-1", "")
	announced(t, s, inventoryevents.Rejected, inventoryevents.Rejected)
}

func lifecycle(t *testing.T, s Stock) {
	items := []catalog.Item{{SKU: "SKU-0001", Quantity: 3}, {SKU: "SKU-0002", Quantity: 2}}
	step := func(name string, f func(tx app.Tx) (bool, error), want bool, avail, reserved, committed int64, status string) {
		t.Helper()
		if got := do(t, s, f); got != want {
			t.Fatalf("%s: %v, want %v", name, got, want)
		}
		stock(t, s, "SKU-0001", avail, reserved, committed)
		if p, err := s.Product(ctx, "SKU-0002"); err != nil || p.Available+p.Reserved+p.Committed != 10 {
			t.Fatalf("%s: SKU-0002 %+v %v: stock not conserved", name, p, err)
		}
		statuses(t, s, "o", status)
	}
	reserve := func(tx app.Tx) (bool, error) { return app.Reserve(ctx, tx, "o", items) }
	commit := func(tx app.Tx) (bool, error) { return app.Commit(ctx, tx, "o") }
	release := func(tx app.Tx) (bool, error) { return app.Release(ctx, tx, "o", "orders.cancelled") }
	step("reserve", reserve, true, 7, 3, 0, catalog.Reserved)
	step("reserve again", reserve, true, 7, 3, 0, catalog.Reserved)
	step("commit", commit, true, 7, 0, 3, catalog.Committed)
	step("commit again", commit, false, 7, 0, 3, catalog.Committed)
	// A cancellation after the commit gives the sold stock back.
	step("release committed", release, true, 10, 0, 0, catalog.Released)
	step("release again", release, false, 10, 0, 0, catalog.Released)
	step("commit after release", commit, false, 10, 0, 0, catalog.Released)
	announced(t, s, inventoryevents.Reserved, inventoryevents.Reserved, inventoryevents.Committed, inventoryevents.Released)
}

func expiry(t *testing.T, s Stock) {
	one := []catalog.Item{{SKU: "SKU-0001", Quantity: 2}}
	do(t, s, func(tx app.Tx) (bool, error) { return app.Reserve(ctx, tx, "sold", one) })
	do(t, s, func(tx app.Tx) (bool, error) { return app.Commit(ctx, tx, "sold") })
	if do(t, s, func(tx app.Tx) (bool, error) { return app.Expire(ctx, tx, "sold") }) {
		t.Fatal("expired a committed order")
	}
	do(t, s, func(tx app.Tx) (bool, error) { return app.Reserve(ctx, tx, "stuck", one) })
	if !do(t, s, func(tx app.Tx) (bool, error) { return app.Expire(ctx, tx, "stuck") }) {
		t.Fatal("a reserved order did not expire")
	}
	stock(t, s, "SKU-0001", 8, 0, 2)
	statuses(t, s, "sold", catalog.Committed)
	statuses(t, s, "stuck", catalog.Released)
	announced(t, s, inventoryevents.Reserved, inventoryevents.Committed, inventoryevents.Reserved, inventoryevents.Expired, inventoryevents.Released)
}

func rollback(t *testing.T, s Stock) {
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx app.Tx) error {
		if _, err := app.Reserve(ctx, tx, "o", []catalog.Item{{SKU: "SKU-0001", Quantity: 5}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: %v, want the function's error", err)
	}
	stock(t, s, "SKU-0001", 10, 0, 0)
	statuses(t, s, "o", "")
	announced(t, s)
}
