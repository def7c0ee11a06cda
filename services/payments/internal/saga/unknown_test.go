package saga_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/retry"
	"github.com/example/sagasuite/services/payments/internal/payment"
	"github.com/example/sagasuite/services/payments/internal/pspclient"
	"github.com/example/sagasuite/services/payments/internal/pspsim"
	"github.com/example/sagasuite/services/payments/internal/saga"
)

// ledger is the provider's own record of the money it holds: what the
// tests check payments' records against.
func (e *env) ledger() map[string]pspsim.ChargeRecord {
	e.t.Helper()
	resp, err := http.Get(e.pspURL + "/admin/charges")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var l pspsim.Ledger
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]pspsim.ChargeRecord{}
	for _, ch := range l.Charges {
		out[ch.IdempotencyKey] = ch
	}
	return out
}

// recover runs the recovery loop until the test ends.
func (e *env) recover() {
	ctx, stop := context.WithCancel(context.Background())
	e.t.Cleanup(stop)
	go func() { _ = e.saga.Recover(ctx) }()
}

// until waits up to 10 s for o's payments to satisfy ok.
func (e *env) until(o string, ok func([]payment.Payment) bool) []payment.Payment {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps := e.payments(o)
		if ok(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("payments of %s: %+v after 10 s; ledger %+v", o, ps, e.ledger())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func status(want string) func([]payment.Payment) bool {
	return func(ps []payment.Payment) bool { return len(ps) == 1 && ps[0].Status == want }
}

// A provider that stalls past the client's timeout still charges. The
// charge's outcome is unknown, so nothing is recorded as "not charged":
// the call is made again with its key, the provider answers what it did,
// and the order is paid once.
func TestAChargeWhoseOutcomeIsUnknownIsSettledByItsKey(t *testing.T) {
	e := newEnvWith(t, retrying(), saga.Config{Lease: 200 * time.Millisecond, DecideWithin: time.Minute}, 100*time.Millisecond)
	e.chargeDelay.Store(int64(400 * time.Millisecond))
	e.placed("o", "4242424242424242")
	e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
	if ps := e.payments("o"); len(ps) != 0 {
		t.Fatalf("a charge whose every attempt timed out was recorded: %+v", ps)
	}
	if n, _ := e.store.PendingCalls(context.Background()); n != 1 {
		t.Fatalf("%d calls outstanding, want the charge", n)
	}
	time.Sleep(500 * time.Millisecond) // the stalled provider charges meanwhile
	if ch := e.ledger()["charge-o"]; ch.Status != pspsim.Approved {
		t.Fatalf("the provider's ledger: %+v, want the charge it made after the client gave up", ch)
	}
	e.chargeDelay.Store(0)
	e.recover()
	ps := e.until("o", status(payment.Authorized))
	if ch := e.ledger()["charge-o"]; ps[0].AmountCents != ch.AmountCents || len(e.ledger()) != 1 {
		t.Fatalf("payment %+v, ledger %+v: one charge, the one recorded", ps[0], e.ledger())
	}
	if got := e.outboxTypes(); strings.Join(got, ",") != "payments.authorized" {
		t.Fatalf("outbox %v", got)
	}
}

// The attack of issue 19: the provider stalls for longer than the order
// may wait. The payment is given up (FAILED payment_unavailable: the saga
// cancels the order) but the charge is not forgotten: once the provider
// answers, the money it took is refunded. Its ledger ends with nothing
// held for the cancelled order.
func TestAnOrderGivenUpWhileItsChargeWasUnknownIsRefunded(t *testing.T) {
	e := newEnvWith(t, retrying(), saga.Config{Lease: 200 * time.Millisecond, DecideWithin: 300 * time.Millisecond}, 100*time.Millisecond)
	e.chargeDelay.Store(int64(400 * time.Millisecond))
	e.placed("o", "4242424242424242")
	e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
	e.recover()
	ps := e.until("o", status(payment.Failed))
	if ps[0].Reason != payment.ReasonUnavailable {
		t.Fatalf("given up as %+v", ps[0])
	}
	if n, _ := e.store.PendingCalls(context.Background()); n == 0 {
		t.Fatal("the charge was forgotten when the order was given up")
	}
	e.chargeDelay.Store(0) // the provider answers again
	ps = e.until("o", status(payment.Refunded))
	if ps[0].Reason != payment.ReasonUnavailable {
		t.Fatalf("refunded %+v: the reason it was given up stays", ps[0])
	}
	if ch := e.ledger()["charge-o"]; ch.Status != pspsim.Refunded {
		t.Fatalf("the provider still holds %+v for an order given up", ch)
	}
	if got := e.outboxTypes(); strings.Join(got, ",") != "payments.failed,payments.refunded" {
		t.Fatalf("outbox %v: the late approval must not be announced as an authorization", got)
	}
	if n, _ := e.store.PendingCalls(context.Background()); n != 0 {
		t.Fatalf("%d calls outstanding after the refund", n)
	}
}

// Payments dies after the provider charged, before it recorded anything;
// the order is cancelled before the recovery loop makes the call again.
// The planned call may have happened, so it is made again by its key: the
// provider answers with the charge, and the money goes back.
func TestACrashAfterTheProviderChargedThenACancellationIsRefunded(t *testing.T) {
	e := newEnv(t)
	e.dieMidCharge("o")
	time.Sleep(400 * time.Millisecond) // the provider charges all the same
	e.deliver("orders.cancelled", map[string]string{"order_id": "o", "reason": "saga_timeout"})
	e.chargeDelay.Store(0)
	e.recover()
	e.until("o", status(payment.Refunded))
	if ch := e.ledger()["charge-o"]; ch.Status != pspsim.Refunded {
		t.Fatalf("the provider holds %+v for a cancelled order", ch)
	}
}

// An order cancelled before its first charge was sent is never charged:
// nobody can have sent it.
func TestCancelledBeforeTheFirstCallIsNeverCharged(t *testing.T) {
	e := newEnv(t)
	e.placed("o", "4242424242424242")
	e.deliver("orders.cancelled", map[string]string{"order_id": "o", "reason": "saga_timeout"})
	e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
	if len(e.ledger()) != 0 || len(e.payments("o")) != 0 || e.charges.Load() != 0 {
		t.Fatalf("ledger %+v, payments %+v", e.ledger(), e.payments("o"))
	}
}

// A refund the provider does not confirm (here a 404, as a wrong PSP_URL
// answers) is not taken for done: the payment stays AUTHORIZED and the
// refund is made again until the provider confirms it.
func TestARefundTheProviderDoesNotConfirmIsMadeAgain(t *testing.T) {
	e := newEnv(t)
	e.placed("o", "4242424242424242")
	e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
	e.refundMissing.Store(true)
	ev, _ := kafka.NewEvent("orders.cancelled", "/test", "o", map[string]string{"order_id": "o", "reason": "saga_timeout"})
	_ = e.handle.Handle(context.Background(), kafka.Message{Event: ev, Topic: "orders.events"}) // the refund fails after the commit
	e.recover()
	time.Sleep(300 * time.Millisecond)
	if ps := e.payments("o"); len(ps) != 1 || ps[0].Status != payment.Authorized {
		t.Fatalf("payments %+v after refunds answered 404: not refunded, so still AUTHORIZED", ps)
	}
	if ch := e.ledger()["charge-o"]; ch.Status != pspsim.Approved {
		t.Fatalf("ledger %+v", ch)
	}
	e.refundMissing.Store(false)
	e.until("o", status(payment.Refunded))
	if ch := e.ledger()["charge-o"]; ch.Status != pspsim.Refunded {
		t.Fatalf("ledger %+v", ch)
	}
}

// The provider charges, then answers badly: it drops the connection, or
// answers 500. Either way the charge is unknown, and settled by its key
// once the provider answers properly: one charge, recorded once.
func TestChargedThenDroppedOrFailedIsSettledByItsKey(t *testing.T) {
	for _, fault := range []string{pspsim.AfterChargeDrop, pspsim.AfterChargeError} {
		t.Run(fault, func(t *testing.T) {
			e := newEnv(t)
			e.providerFaults(pspsim.ProviderFaults{AfterCharge: fault, Rate: 1})
			e.placed("o", "4242424242424242")
			e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
			if ps := e.payments("o"); len(ps) != 0 {
				t.Fatalf("recorded %+v although the provider never answered", ps)
			}
			if ch := e.ledger()["charge-o"]; ch.Status != pspsim.Approved {
				t.Fatalf("ledger %+v", ch)
			}
			e.providerFaults(pspsim.ProviderFaults{})
			e.recover()
			ps := e.until("o", status(payment.Authorized))
			if len(e.ledger()) != 1 || ps[0].AmountCents != 1234 {
				t.Fatalf("payment %+v, ledger %+v", ps, e.ledger())
			}
		})
	}
}

func (e *env) providerFaults(f pspsim.ProviderFaults) {
	e.t.Helper()
	b, _ := json.Marshal(f)
	req, _ := http.NewRequest(http.MethodPut, e.pspURL+"/admin/provider-faults", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("provider faults: %v %v", resp, err)
	}
	_ = resp.Body.Close()
}

// A charge whose first answer was lost (a 500 before the provider got it)
// and which the provider then refuses for good (the processing-error
// card: its answer is stored under the key) is settled as FAILED: the
// replay's definite answer ends it, nothing is left to make again.
func TestAnUnknownChargeThatTheProviderThenRefusesIsSettled(t *testing.T) {
	e := newEnv(t)
	e.chargeFail.Store(true) // 500 without reaching the provider
	e.placed("o", pspsim.CardProcessingError)
	e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
	if ps := e.payments("o"); len(ps) != 0 {
		t.Fatalf("recorded %+v after unknown answers", ps)
	}
	e.chargeFail.Store(false)
	e.recover()
	ps := e.until("o", status(payment.Failed))
	if ps[0].Reason != payment.ReasonUnavailable || len(e.ledger()) != 0 {
		t.Fatalf("payments %+v, ledger %+v", ps, e.ledger())
	}
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := e.store.PendingCalls(context.Background()); n != 0; n, _ = e.store.PendingCalls(context.Background()) {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls left after the provider's definite refusal", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The processing-error card fails the charge for good, and the provider
// says so; the same failure opens the breaker, which refuses the retry.
// The provider's answer, not the breaker's refusal, is the outcome: the
// order is given up at once and nothing is left to settle. (The retry's
// "breaker open" used to hide it: the charge was taken for unknown and
// made again for ever, each time reopening the breaker.)
func TestADefiniteAnswerIsNotHiddenByTheRetryTheBreakerRefuses(t *testing.T) {
	br, err := breaker.New(observe.Discard(), breaker.Settings{Name: "psp", Failures: 1, OpenFor: time.Minute, IsFailure: pspclient.Transient})
	if err != nil {
		t.Fatal(err)
	}
	policy := retry.Policy{Attempts: 3, Base: time.Microsecond, Retryable: pspclient.Transient}
	e := newEnvWith(t, pspclient.Guards{Charge: guard.Guard{Retry: policy, Breaker: br}}, saga.Config{Lease: 200 * time.Millisecond}, 0)
	e.placed("o", pspsim.CardProcessingError)
	e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
	if ps := e.payments("o"); len(ps) != 1 || ps[0].Status != payment.Failed {
		t.Fatalf("payments %+v, want FAILED at once", ps)
	}
	if n, _ := e.store.PendingCalls(context.Background()); n != 0 {
		t.Fatalf("%d calls left for a charge the provider refused for good", n)
	}
}
