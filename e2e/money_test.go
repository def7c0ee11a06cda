package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// moneyAddsUp waits until every order in ids is terminal, the provider's
// ledger holds exactly each CONFIRMED order's total and nothing for the
// others, and payments' own records agree (one AUTHORIZED payment per
// CONFIRMED order, none for the others), with no provider call left
// unsettled.
func moneyAddsUp(t *testing.T, ids []string) map[string]int {
	t.Helper()
	outcomes := map[string]int{}
	eventually(t, "the money adds up against the provider's ledger", func() error {
		clear(outcomes)
		ledger := pspLedger(t)
		for _, id := range ids {
			o, err := awaitOrder(id, 0)
			if err != nil || o.Status == "PENDING" {
				return fmt.Errorf("order %s: %s %v", id, o.Status, err)
			}
			outcomes[o.Status+" "+o.Reason]++
			want := int64(0)
			if o.Status == "CONFIRMED" {
				want = o.TotalCents
			}
			if held := heldFor(ledger, id); held != want {
				return fmt.Errorf("order %s %s %s: the provider holds %d cents, want %d (payments %+v)", id, o.Status, o.Reason, held, want, paymentsOf(t, id))
			}
			authorized := 0
			for _, p := range paymentsOf(t, id) {
				if p.Status == "AUTHORIZED" {
					authorized++
				}
			}
			if (o.Status == "CONFIRMED") != (authorized == 1) || authorized > 1 {
				return fmt.Errorf("order %s %s: payments %+v", id, o.Status, paymentsOf(t, id))
			}
		}
		if n := metric(t, "payments", "payments_provider_calls_outstanding"); n != 0 {
			return fmt.Errorf("%v provider calls not settled", n)
		}
		return nil
	})
	return outcomes
}

// The attack of issue 19: the provider stalls (SIGSTOP) while orders
// arrive, and charges them all when it wakes up, long after payments gave
// up waiting. A charge whose outcome is unknown is never taken for "not
// charged": payments asks again by its key and, for orders given up in
// the meantime, refunds. Checked against the provider's own ledger.
func TestAStalledProviderKeepsNoMoneyOfCancelledOrders(t *testing.T) {
	psp := suite.procs["psp"].cmd.Process
	if err := psp.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = psp.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	var ids []string
	for i := range 5 {
		ids = append(ids, place(t, "c-stall", fmt.Sprintf("SKU-00%d", 50+i), 1, "4242424242424242").OrderID)
	}
	time.Sleep(8 * time.Second)
	resume()
	t.Logf("outcomes %v", moneyAddsUp(t, ids))
}

// The attack of issue 19: payments' database connections are terminated
// while the provider answers in 300 ms. Payments logs, retries and stays
// up, and every order reaches its outcome with the money right.
func TestPaymentsSurvivesItsConnectionsBeingKilled(t *testing.T) {
	setFaults(t, "psp", 300, 0)
	defer setFaults(t, "psp", 0, 0)
	conn, err := pgx.Connect(context.Background(), suite.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	payments := suite.procs["payments"]
	pid := payments.cmd.Process.Pid
	var ids []string
	for i := range 10 {
		ids = append(ids, place(t, "c-pgkill", fmt.Sprintf("SKU-00%d", 60+i%5), 1, "4242424242424242").OrderID)
		var killed int
		if err := conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, suite.dbPrefix+"_payments").Scan(&killed); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Logf("outcomes %v", moneyAddsUp(t, ids))
	if payments.cmd.Process.Pid != pid || payments.cmd.ProcessState != nil || payments.cmd.Process.Signal(syscall.Signal(0)) != nil {
		t.Fatal("payments exited while its connections were killed")
	}
}
