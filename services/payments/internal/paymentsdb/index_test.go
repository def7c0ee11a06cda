package paymentsdb_test

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/payments/internal/payment"
	"github.com/example/sagasuite/services/payments/internal/paymentsdb"
)

// Every statement of a payment's way (intent, charge, refund, recovery)
// reads a million orders' intents and payments through an index.
func TestEveryQueryUsesAnIndexAtAMillionPayments(t *testing.T) {
	ctx := context.Background()
	pool := postgrestest.Large(t, map[string]fs.FS{"payments": paymentsdb.Migrations()}, `INSERT INTO payment_intents (order_id, card_last4, amount_cents, placed, reserved)
		SELECT 'o-' || g, '4242', 100, true, true FROM generate_series(0, 999999) g;
		INSERT INTO payments (payment_id, order_id, amount_cents, status, card_last4)
		SELECT 'p-' || g, 'o-' || g, 100, 'AUTHORIZED', '4242' FROM generate_series(0, 999999) g;
		INSERT INTO psp_calls (order_id, kind, due_at) SELECT 'o-' || g, 'charge', now() + interval '1 hour' FROM generate_series(0, 99999) g`,
		"payment_intents", "payments", "psp_calls")
	rpool, rec := postgrestest.Recording(t, pool)
	store := paymentsdb.New(rpool)
	err := pgx.BeginFunc(ctx, rpool, func(tx pgx.Tx) error {
		if _, err := store.UpdateIntent(ctx, tx, "o-new", payment.IntentChange{Placed: true, PaymentToken: "tok", CardLast4: "4242", AmountCents: 100}); err != nil {
			return err
		}
		if _, err := store.Intent(ctx, tx, "o-new"); err != nil {
			return err
		}
		if _, err := store.PlanCharge(ctx, tx, "o-42", time.Minute); err != nil {
			return err
		}
		if _, err := store.PlanCall(ctx, tx, "o-new", payment.CallCharge, time.Minute); err != nil {
			return err
		}
		if _, _, err := store.Payment(ctx, tx, "o-4242"); err != nil {
			return err
		}
		if err := store.Insert(ctx, tx, payment.Payment{PaymentID: "p-new", OrderID: "o-new", AmountCents: 100, Status: payment.Authorized, CardLast4: "4242"}); err != nil {
			return err
		}
		if err := store.SetStatus(ctx, tx, "p-new", payment.Refunded, ""); err != nil {
			return err
		}
		if err := store.ForgetToken(ctx, tx, "o-new"); err != nil {
			return err
		}
		return store.CallDone(ctx, tx, "o-new", payment.CallCharge)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.List(ctx, "o-4242"); err != nil {
		t.Fatal(err)
	}
	if err := store.PostponeCall(ctx, "o-4242", payment.CallCharge, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ClaimDue(ctx, 100, time.Minute); err != nil {
		t.Fatal(err)
	}
	// psp_calls holds only the calls in flight; PendingCalls (a gauge) counts them all.
	postgrestest.NoSeqScans(t, pool, rec.Statements(), "payment_intents", "payments")
}
