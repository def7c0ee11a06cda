// Package apptest is the one suite every implementation of payments'
// ports (app.Store and app.Tx) must pass: paymentsdb (PostgreSQL) and
// appfake (memory) run it, as Watermill runs one Pub/Sub suite on every
// backend. It pins what the use cases rely on: the join of the two facts
// an order needs before it is charged, planned calls made once and
// claimed by lease, one payment per order, and transactions that apply
// whole or not at all. (What runs after a message's commit is the inbox's
// and is tested with it.)
package apptest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/example/sagasuite/services/payments/internal/app"
	"github.com/example/sagasuite/services/payments/internal/payment"
)

// Store is an implementation under test.
type Store interface {
	app.Store
	// Announced is the types of the events announced so far, in order.
	Announced(t *testing.T) []string
}

// Run runs the suite; open returns an empty store for each case.
func Run(t *testing.T, open func(t *testing.T) Store) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"joins placed and reserved", join},
		{"plans a call once and claims it by lease", calls},
		{"plans a charge only while no payment is recorded", charges},
		{"records one payment per order", payments},
		{"applies a transaction whole or not at all", rollback},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

var ctx = context.Background()

func in(t *testing.T, s Store, f func(tx app.Tx) error) {
	t.Helper()
	if err := s.InTx(ctx, f); err != nil {
		t.Fatal(err)
	}
}

func join(t *testing.T, s Store) {
	var got payment.Intent
	in(t, s, func(tx app.Tx) (err error) {
		got, err = tx.UpdateIntent(ctx, "o", payment.IntentChange{Placed: true, PaymentToken: "tok", CardLast4: "4242", AmountCents: 500})
		return err
	})
	if got.ReadyToCharge() || got.PaymentToken != "tok" || got.AmountCents != 500 || got.CardLast4 != "4242" {
		t.Fatalf("placed: %+v", got)
	}
	in(t, s, func(tx app.Tx) (err error) {
		got, err = tx.UpdateIntent(ctx, "o", payment.IntentChange{Reserved: true})
		return err
	})
	if !got.ReadyToCharge() || got.PaymentToken != "tok" {
		t.Fatalf("placed and reserved: %+v, want ready with the token", got)
	}
	// A second orders.placed does not replace the token the charge uses.
	in(t, s, func(tx app.Tx) (err error) {
		got, err = tx.UpdateIntent(ctx, "o", payment.IntentChange{Placed: true, PaymentToken: "other", CardLast4: "4242", AmountCents: 500})
		return err
	})
	if got.PaymentToken != "tok" {
		t.Fatalf("placed twice: token %q, want the first", got.PaymentToken)
	}
	in(t, s, func(tx app.Tx) error { return tx.ForgetToken(ctx, "o") })
	read, err := s.Intent(ctx, "o")
	if err != nil || read.PaymentToken != "" || !read.Placed || !read.Reserved || read.ReadyToCharge() {
		t.Fatalf("after ForgetToken: %+v %v", read, err)
	}
	in(t, s, func(tx app.Tx) (err error) {
		got, err = tx.UpdateIntent(ctx, "c", payment.IntentChange{Cancelled: true})
		if err != nil {
			return err
		}
		got, err = tx.UpdateIntent(ctx, "c", payment.IntentChange{Placed: true, PaymentToken: "t", CardLast4: "4242", AmountCents: 1})
		if err != nil {
			return err
		}
		got, err = tx.UpdateIntent(ctx, "c", payment.IntentChange{Reserved: true})
		return err
	})
	if got.ReadyToCharge() || !got.Cancelled {
		t.Fatalf("cancelled first: %+v, must never be ready", got)
	}
}

func calls(t *testing.T, s Store) {
	var first, second bool
	in(t, s, func(tx app.Tx) (err error) {
		if first, err = tx.PlanCall(ctx, "o", payment.CallCharge, 0); err != nil {
			return err
		}
		second, err = tx.PlanCall(ctx, "o", payment.CallCharge, 0)
		return err
	})
	if !first || second {
		t.Fatalf("planned %v then %v, want true then false", first, second)
	}
	in(t, s, func(tx app.Tx) error {
		c, found, err := tx.PlannedCall(ctx, "o", payment.CallCharge)
		if err == nil && (!found || c.Attempts != 0 || c.OrderID != "o" || c.Kind != payment.CallCharge) {
			t.Errorf("planned call %+v %v", c, found)
		}
		return err
	})
	claimed, err := s.ClaimDue(ctx, 10, 0)
	if err != nil || len(claimed) != 1 || claimed[0].Attempts != 1 {
		t.Fatalf("claimed %+v %v, want the call once, attempt 1", claimed, err)
	}
	out, err := s.Outstanding(ctx)
	if err != nil || !slices.ContainsFunc(out, func(c payment.CallsOutstanding) bool { return c.Kind == payment.CallCharge && c.Count == 1 }) {
		t.Fatalf("outstanding %+v %v", out, err)
	}
	if err := s.PostponeCall(ctx, "o", payment.CallCharge, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if again, err := s.ClaimDue(ctx, 10, 0); err != nil || len(again) != 0 {
		t.Fatalf("a postponed call was due at once: %+v %v", again, err)
	}
	in(t, s, func(tx app.Tx) error { return tx.CallDone(ctx, "o", payment.CallCharge) })
	in(t, s, func(tx app.Tx) error {
		if _, found, err := tx.PlannedCall(ctx, "o", payment.CallCharge); err != nil || found {
			t.Errorf("a settled call is still planned (%v)", err)
		}
		return nil
	})
	out, _ = s.Outstanding(ctx)
	for _, c := range out {
		if c.Count != 0 {
			t.Fatalf("outstanding after settling: %+v", out)
		}
	}
}

func charges(t *testing.T, s Store) {
	var first, again bool
	in(t, s, func(tx app.Tx) (err error) {
		if first, err = tx.PlanCharge(ctx, "o", 0); err != nil {
			return err
		}
		again, err = tx.PlanCharge(ctx, "o", 0)
		return err
	})
	if !first || again {
		t.Fatalf("planned %v then %v, want true then false", first, again)
	}
	in(t, s, func(tx app.Tx) error {
		if err := tx.CallDone(ctx, "o", payment.CallCharge); err != nil {
			return err
		}
		return tx.Insert(ctx, payment.Payment{PaymentID: "p", OrderID: "o", AmountCents: 100, Status: payment.Authorized, CardLast4: "4242"})
	})
	var after bool
	in(t, s, func(tx app.Tx) (err error) {
		after, err = tx.PlanCharge(ctx, "o", 0)
		return err
	})
	if after {
		t.Fatal("a charge was planned for an order whose payment is recorded")
	}
}

func payments(t *testing.T, s Store) {
	p := payment.Payment{PaymentID: "p-1", OrderID: "o", AmountCents: 500, Status: payment.Failed, CardLast4: "4242", Reason: payment.ReasonUnavailable}
	in(t, s, func(tx app.Tx) error { return tx.Insert(ctx, p) })
	got, found, err := s.Payment(ctx, "o")
	if err != nil || !found || got != p || got.Holds() {
		t.Fatalf("payment %+v %v %v, want %+v holding nothing", got, found, err, p)
	}
	// The charge turned out to have been made: the provider holds money.
	in(t, s, func(tx app.Tx) error { return tx.SetChargeID(ctx, "p-1", "ch-1") })
	if got, _, _ := s.Payment(ctx, "o"); !got.Holds() || got.ChargeID != "ch-1" {
		t.Fatalf("after SetChargeID: %+v", got)
	}
	in(t, s, func(tx app.Tx) error { return tx.SetStatus(ctx, "p-1", payment.Refunded, "orders.cancelled") })
	in(t, s, func(tx app.Tx) error {
		got, found, err := tx.Payment(ctx, "o")
		if err == nil && (!found || got.Status != payment.Refunded || got.Reason != "orders.cancelled" || got.Holds()) {
			t.Errorf("after SetStatus: %+v", got)
		}
		return err
	})
	if _, found, err := s.Payment(ctx, "nobody"); err != nil || found {
		t.Fatalf("a payment for an unknown order: %v %v", found, err)
	}
}

func rollback(t *testing.T, s Store) {
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx app.Tx) error {
		if _, err := tx.UpdateIntent(ctx, "o", payment.IntentChange{Reserved: true}); err != nil {
			return err
		}
		if err := tx.Insert(ctx, payment.Payment{PaymentID: "p", OrderID: "o", Status: payment.Authorized, CardLast4: "4242"}); err != nil {
			return err
		}
		if _, err := tx.PlanCall(ctx, "o", payment.CallRefund, 0); err != nil {
			return err
		}
		if err := tx.Emit(ctx, "payments.authorized", "o", map[string]string{"order_id": "o"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: %v, want the function's error", err)
	}
	if _, found, _ := s.Payment(ctx, "o"); found {
		t.Error("a rolled-back payment was kept")
	}
	if claimed, _ := s.ClaimDue(ctx, 10, 0); len(claimed) != 0 {
		t.Errorf("a rolled-back call was kept: %+v", claimed)
	}
	if got := s.Announced(t); len(got) != 0 {
		t.Errorf("a rolled-back event was announced: %v", got)
	}
	in(t, s, func(tx app.Tx) error {
		return tx.Emit(ctx, "payments.authorized", "o", map[string]string{"order_id": "o"})
	})
	if got := s.Announced(t); !slices.Equal(got, []string{"payments.authorized"}) {
		t.Errorf("announced %v", got)
	}
}
