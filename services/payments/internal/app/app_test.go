package app_test

import (
	"context"
	"slices"
	"testing"

	"github.com/example/sagasuite/platform/layering"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/internal/app"
	"github.com/example/sagasuite/services/payments/internal/app/appfake"
	"github.com/example/sagasuite/services/payments/internal/app/apptest"
	"github.com/example/sagasuite/services/payments/internal/payment"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// The ports' suite on the in-memory store; paymentsdb runs the same suite
// on PostgreSQL.
func TestPortsOnTheFake(t *testing.T) {
	apptest.Run(t, func(t *testing.T) apptest.Store { return fake{appfake.New()} })
}

type fake struct{ *appfake.Store }

func (f fake) Announced(*testing.T) []string {
	var types []string
	for _, e := range f.Events() {
		types = append(types, e.Type)
	}
	return types
}

// app depends on the domain and the ports it declares, never on an
// adapter.
func TestAppImportsNoAdapter(t *testing.T) {
	layering.Check(t, ".", "paymentsdb", "pspclient", "pspsim", "httpapi", "saga")
}

// provider is a PSP that approves every charge and refund, and counts them.
type provider struct{ charges, refunds int }

func (p *provider) Charge(_ context.Context, key, _, _ string, _ int64) (payment.Charge, error) {
	p.charges++
	return payment.Charge{ChargeID: "ch-" + key}, nil
}

func (p *provider) Refund(context.Context, string, string) error {
	p.refunds++
	return nil
}

// The saga step on the fake: the charge waits for both facts, whichever
// comes last, is made once after the commit, and a cancellation after it
// gives the money back once.
func TestChargesOnceBothFactsAreInAndRefundsOnCancel(t *testing.T) {
	ctx := context.Background()
	store, psp := appfake.New(), &provider{}
	p, err := app.New(store, psp, observe.Discard(), app.Config{})
	if err != nil {
		t.Fatal(err)
	}
	step := func(f func(tx app.Tx) error) {
		t.Helper()
		if err := store.InTx(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	step(func(tx app.Tx) error { return p.Reserved(ctx, tx, "o") })
	if psp.charges != 0 {
		t.Fatal("charged before the order was placed")
	}
	placed := orderevents.OrderPlaced{OrderID: "o", TotalCents: 500, Currency: "EUR",
		Items: []orderevents.Item{{SKU: "s", Quantity: 1, UnitPriceCents: 500}}, Payment: orderevents.Payment{Token: "tok", CardLast4: "4242"}}
	step(func(tx app.Tx) error { return p.Placed(ctx, tx, placed) })
	step(func(tx app.Tx) error { return p.Placed(ctx, tx, placed) })
	if got, _, _ := store.Payment(ctx, "o"); psp.charges != 1 || got.Status != payment.Authorized {
		t.Fatalf("%d charges, payment %+v; want one AUTHORIZED", psp.charges, got)
	}
	step(func(tx app.Tx) error { return p.Cancelled(ctx, tx, "o", orderevents.Cancelled) })
	step(func(tx app.Tx) error { return p.Cancelled(ctx, tx, "o", orderevents.Cancelled) })
	if got, _, _ := store.Payment(ctx, "o"); psp.refunds != 1 || got.Status != payment.Refunded {
		t.Fatalf("%d refunds, payment %+v; want one REFUNDED", psp.refunds, got)
	}
	var types []string
	for _, e := range store.Events() {
		types = append(types, e.Type)
	}
	if want := []string{paymentevents.Authorized, paymentevents.Refunded}; !slices.Equal(types, want) {
		t.Fatalf("announced %v, want %v", types, want)
	}
}
