package saga_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/observe"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/cardcrypt"
	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/platform/retry"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/internal/payment"
	"github.com/example/sagasuite/services/payments/internal/paymentsdb"
	"github.com/example/sagasuite/services/payments/internal/pspclient"
	"github.com/example/sagasuite/services/payments/internal/pspsim"
	"github.com/example/sagasuite/services/payments/internal/saga"
)

type env struct {
	t     *testing.T
	store *paymentsdb.Store
	// charges and refunds count the requests the provider received.
	charges, refunds atomic.Int64
	// chargeDelay slows every charge down, before the provider gets it
	// (which then charges whether or not the client still waits);
	// chargeFail makes them 500 without reaching the provider;
	// refundMissing answers refunds 404, as a wrong URL would.
	chargeDelay   atomic.Int64
	chargeFail    atomic.Bool
	refundMissing atomic.Bool
	pspURL        string
	pspKey        cardcrypt.PublicKey
	handle        kafka.Handler
	saga          *saga.Handlers
	pool          *pgxpool.Pool
	rec           *postgrestest.Recorder // the statements run through pool
	// outboxTypes lists the event types written to the outbox, in order.
	outboxTypes func() []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, retrying(), saga.Config{Lease: 200 * time.Millisecond}, 0)
}

// retrying is the guards of most tests: three attempts, no waiting.
func retrying() pspclient.Guards {
	policy := retry.Policy{Attempts: 3, Base: time.Microsecond, Retryable: pspclient.Transient}
	return pspclient.Guards{Charge: guard.Guard{Retry: policy}, Refund: guard.Guard{Retry: policy}}
}

// newEnvWith is an env whose provider calls go through guards, each
// attempt timing out after timeout (0: never).
func newEnvWith(t *testing.T, guards pspclient.Guards, cfg saga.Config, timeout time.Duration) *env {
	t.Helper()
	pool, rec := postgrestest.Recording(t, postgrestest.Pool(t, map[string]fs.FS{"payments": paymentsdb.Migrations(), "inbox": inbox.Migrations(), "outbox": outbox.Migrations()}))
	keys, err := cardcrypt.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := pspsim.New(observe.Discard(), pspsim.Config{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpserver.New(observe.Discard(), httpserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sim.Routes(srv.Echo, srv.Echo.Group("/admin"), &faults.Injector{})
	e := &env{t: t, store: paymentsdb.New(pool), pspKey: sim.PublicKey(), rec: rec}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/charges":
			e.charges.Add(1)
			time.Sleep(time.Duration(e.chargeDelay.Load()))
			if e.chargeFail.Load() {
				http.Error(w, `{"error":{"code":"down"}}`, http.StatusInternalServerError)
				return
			}
		case "/refunds":
			e.refunds.Add(1)
			if e.refundMissing.Load() {
				http.NotFound(w, r)
				return
			}
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	e.pspURL = ts.URL
	client := pspclient.New(ts.URL, timeout, guards, http.DefaultTransport)
	if cfg.RecoverEvery == 0 {
		cfg.RecoverEvery = 20 * time.Millisecond
	}
	h, err := saga.New(e.store, client, observe.Discard(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.saga, e.pool = h, pool
	in, err := inbox.Setup(context.Background(), pool, observe.Discard(), inbox.Config{Consumer: "payments"})
	if err != nil {
		t.Fatal(err)
	}
	e.handle = in.Handler(h.Routes())
	e.outboxTypes = func() []string {
		rows, err := pool.Query(context.Background(), `SELECT event_type FROM outbox ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}
	return e
}

// token seals card to the simulator's key for the payment of amountCents
// for order, as orders does.
func (e *env) token(card, order string, amountCents int64) string {
	e.t.Helper()
	tok, err := cardcrypt.Seal(e.pspKey, card, cardcrypt.Binding{OrderID: order, AmountCents: amountCents})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) deliver(typ string, data any) {
	e.t.Helper()
	ev, err := kafka.NewEvent(typ, "/test", "o", data)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.handle.Handle(context.Background(), kafka.Message{Event: ev, Topic: strings.Split(typ, ".")[0] + ".events"}); err != nil {
		e.t.Fatalf("%s: %v", typ, err)
	}
}

// deliver2 hands the same message to the handler again (a redelivery).
func (e *env) deliver2(ev kafka.Event) {
	e.t.Helper()
	if err := e.handle.Handle(context.Background(), kafka.Message{Event: ev, Topic: "inventory.events"}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) deliverAsync(typ string, data any) <-chan error {
	done := make(chan error, 1)
	ev, err := kafka.NewEvent(typ, "/test", "o", data)
	if err != nil {
		e.t.Fatal(err)
	}
	go func() {
		done <- e.handle.Handle(context.Background(), kafka.Message{Event: ev, Topic: strings.Split(typ, ".")[0] + ".events"})
	}()
	return done
}

func (e *env) placed(order, card string) {
	e.deliver(orderevents.Placed, orderevents.OrderPlaced{OrderID: order, CustomerID: "c", Currency: "EUR", TotalCents: 1234,
		Items:   []orderevents.Item{{SKU: "SKU-001", Quantity: 1, UnitPriceCents: 1234}},
		Payment: orderevents.Payment{Token: e.token(card, order, 1234), CardLast4: card[len(card)-4:]}})
}

// dieMidCharge places order and delivers its reservation to a process
// that dies (its context ends) while the provider is charging, 300 ms
// slow; it returns the reservation message, for a redelivery.
func (e *env) dieMidCharge(order string) kafka.Event {
	e.t.Helper()
	e.chargeDelay.Store(int64(300 * time.Millisecond))
	e.placed(order, "4242424242424242")
	ev, _ := kafka.NewEvent("inventory.reserved", "/test", order, map[string]string{"order_id": order})
	ctx, die := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, die) // dies with the charge in flight
	if err := e.handle.Handle(ctx, kafka.Message{Event: ev, Topic: "inventory.events"}); err == nil {
		e.t.Fatal("the handler finished although it died mid-call")
	}
	return ev
}

func (e *env) payments(order string) []payment.Payment {
	ps, err := e.store.List(context.Background(), order)
	if err != nil {
		e.t.Fatal(err)
	}
	return ps
}

func TestChargesOnceBothFactsAreInWhicheverComesLast(t *testing.T) {
	for _, placedFirst := range []bool{true, false} {
		e := newEnv(t)
		if placedFirst {
			e.placed("o", "4242424242424242")
			if e.charges.Load() != 0 {
				t.Fatal("charged before the stock was reserved")
			}
			e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
		} else {
			e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
			if e.charges.Load() != 0 {
				t.Fatal("charged before the order was known")
			}
			e.placed("o", "4242424242424242")
		}
		ps := e.payments("o")
		if len(ps) != 1 || ps[0].Status != payment.Authorized || ps[0].AmountCents != 1234 || ps[0].CardLast4 != "4242" || e.charges.Load() != 1 {
			t.Fatalf("placed first %v: payments %+v, %d charges", placedFirst, ps, e.charges.Load())
		}
		if got := e.outboxTypes(); len(got) != 1 || got[0] != "payments.authorized" {
			t.Fatalf("outbox %v", got)
		}
		// The charge goes with the intent its decision read: nothing
		// reads it back between the commit and the call.
		for _, st := range e.rec.Statements() {
			if strings.HasSuffix(st.SQL, "FROM payment_intents WHERE order_id = $1") {
				t.Fatalf("placed first %v: the intent was read again before the charge: %s", placedFirst, st.SQL)
			}
		}
	}
}

func TestDeclinesAndProviderFailures(t *testing.T) {
	tests := []struct {
		card, status, reason, event string
		calls                       int64
	}{
		{pspsim.CardDeclined, payment.Declined, "card_declined", "payments.declined", 1},
		{pspsim.CardInsufficientFunds, payment.Declined, "insufficient_funds", "payments.declined", 1},
		{pspsim.CardProcessingError, payment.Failed, payment.ReasonUnavailable, "payments.failed", 3}, // retried, then given up
	}
	for _, tt := range tests {
		e := newEnv(t)
		e.placed("o", tt.card)
		e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
		ps := e.payments("o")
		if len(ps) != 1 || ps[0].Status != tt.status || ps[0].Reason != tt.reason || e.charges.Load() != tt.calls {
			t.Fatalf("card %s: payments %+v after %d calls", tt.card, ps, e.charges.Load())
		}
		if got := e.outboxTypes(); len(got) != 1 || got[0] != tt.event {
			t.Fatalf("card %s: outbox %v", tt.card, got)
		}
	}
}

func TestCancelledBeforeReservationIsNeverCharged(t *testing.T) {
	e := newEnv(t)
	e.placed("o", "4242424242424242")
	e.deliver("orders.cancelled", map[string]string{"order_id": "o", "reason": "saga_timeout"})
	e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
	if n := e.charges.Load(); n != 0 || len(e.payments("o")) != 0 {
		t.Fatalf("%d charges, payments %+v", n, e.payments("o"))
	}
}

func TestCancelledAfterChargeIsRefundedOnce(t *testing.T) {
	e := newEnv(t)
	e.placed("o", "4242424242424242")
	e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
	e.deliver("orders.cancelled", map[string]string{"order_id": "o", "reason": "saga_timeout"})
	e.deliver("orders.cancelled", map[string]string{"order_id": "o", "reason": "saga_timeout"}) // another event, same meaning
	ps := e.payments("o")
	if len(ps) != 1 || ps[0].Status != payment.Refunded || e.refunds.Load() != 1 {
		t.Fatalf("payments %+v, %d refunds", ps, e.refunds.Load())
	}
	if got := e.outboxTypes(); strings.Join(got, ",") != "payments.authorized,payments.refunded" {
		t.Fatalf("outbox %v", got)
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	e := newEnv(t)
	for typ, data := range map[string]any{
		"orders.placed":      map[string]any{"order_id": "o", "total_cents": 0},
		"inventory.reserved": map[string]any{"order": "o"},
		"orders.teleported":  map[string]any{"order_id": "o"},
	} {
		ev, _ := kafka.NewEvent(typ, "/test", "o", data)
		if err := e.handle.Handle(context.Background(), kafka.Message{Event: ev}); !kafka.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent error (dead-letter)", typ, err)
		}
	}
}

// Slow charges fill their pool; refunds, in their own pool, still complete
// at once, and charges beyond the pool fail fast instead of queueing.
func TestRefundsCompleteWhileChargesSaturate(t *testing.T) {
	charges, _ := bulkhead.New(observe.Discard(), bulkhead.Settings{Name: "charge", MaxConcurrent: 2})
	refunds, _ := bulkhead.New(observe.Discard(), bulkhead.Settings{Name: "refund", MaxConcurrent: 2, MaxQueue: 10, MaxWait: 5 * time.Second})
	e := newEnvWith(t, pspclient.Guards{Charge: guard.Guard{Bulkhead: charges}, Refund: guard.Guard{Bulkhead: refunds}}, saga.Config{Lease: 200 * time.Millisecond}, 0)
	paid := []string{"paid-1", "paid-2", "paid-3"}
	for _, id := range paid {
		e.placed(id, "4242424242424242")
		e.deliver("inventory.reserved", map[string]string{"order_id": id})
	}
	e.chargeDelay.Store(int64(2 * time.Second))
	var slow []<-chan error
	for i := range 6 {
		id := fmt.Sprintf("slow-%d", i)
		e.placed(id, "4242424242424242")
		slow = append(slow, e.deliverAsync("inventory.reserved", map[string]string{"order_id": id}))
	}
	time.Sleep(200 * time.Millisecond) // two charges hang at the provider, four were refused
	start := time.Now()
	for _, id := range paid {
		e.deliver("orders.cancelled", map[string]string{"order_id": id, "reason": "saga_timeout"})
	}
	took := time.Since(start)
	for _, id := range paid {
		if ps := e.payments(id); len(ps) != 1 || ps[0].Status != payment.Refunded {
			t.Fatalf("%s: %+v", id, ps)
		}
	}
	if took > time.Second {
		t.Fatalf("refunds took %v while charges were saturated: they waited behind charges", took)
	}
	failed := 0
	for i, done := range slow {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if ps := e.payments(fmt.Sprintf("slow-%d", i)); len(ps) == 1 && ps[0].Status == payment.Failed && ps[0].Reason == payment.ReasonUnavailable {
			failed++
		}
	}
	if failed != 4 {
		t.Fatalf("%d charges failed fast, want the 4 beyond the pool of 2", failed)
	}
	t.Logf("3 refunds in %v while 2 charges hung", took)
}

// A dead provider and many orders: without a budget every charge would be
// tried 3 times; with it, retries stay near 10% of charges.
func TestRetryBudgetCapsAStorm(t *testing.T) {
	budget, _ := retry.NewBudget(observe.Discard(), retry.BudgetSettings{Name: "psp", Ratio: 0.1, PerSecond: 1})
	policy := retry.Policy{Attempts: 3, Base: time.Microsecond, Budget: budget, Retryable: pspclient.Transient}
	e := newEnvWith(t, pspclient.Guards{Charge: guard.Guard{Retry: policy}}, saga.Config{Lease: 200 * time.Millisecond}, 0)
	e.chargeFail.Store(true)
	const orders = 100
	for i := range orders {
		id := fmt.Sprintf("o-%d", i)
		e.placed(id, "4242424242424242")
		e.deliver("inventory.reserved", map[string]string{"order_id": id})
	}
	calls := e.charges.Load()
	if calls > orders+orders/10+12 || calls < orders {
		t.Fatalf("the provider received %d charge calls for %d orders; the budget allows about %d", calls, orders, orders+orders/10+10)
	}
	t.Logf("%d provider calls for %d failing charges (no budget: %d)", calls, orders, 3*orders)
}

// The provider is called outside any transaction: while a slow charge is
// in flight, no connection of this database sits "idle in transaction"
// (which would hold a pooled connection and the intent's row lock for as
// long as the provider takes).
func TestNoTransactionIsOpenWhileTheProviderIsCalled(t *testing.T) {
	e := newEnv(t)
	e.chargeDelay.Store(int64(600 * time.Millisecond))
	e.placed("o", "4242424242424242")
	done := e.deliverAsync("inventory.reserved", map[string]string{"order_id": "o"})
	deadline := time.Now().Add(5 * time.Second)
	for e.charges.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the charge is in flight now
	var idleInTx int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&idleInTx); err != nil {
		t.Fatal(err)
	}
	if idleInTx != 0 {
		t.Fatalf("%d connections idle in transaction while the provider was called", idleInTx)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ps := e.payments("o"); len(ps) != 1 || ps[0].Status != payment.Authorized {
		t.Fatalf("payments %+v", ps)
	}
}

// A crash between the decision to charge and the recorded outcome (the
// process dies while the provider is charging) loses nothing: the planned
// call is made again by the recovery loop with the same idempotency key,
// and the outcome is recorded once.
func TestACrashBetweenDecisionAndOutcomeIsRecovered(t *testing.T) {
	e := newEnv(t)
	ev := e.dieMidCharge("o")
	if ps := e.payments("o"); len(ps) != 0 {
		t.Fatalf("an outcome was recorded by a process that died before it: %+v", ps)
	}
	if n, _ := e.store.PendingCalls(context.Background()); n != 1 {
		t.Fatalf("%d planned calls after the crash, want the charge", n)
	}
	// The redelivered message is a duplicate: it must not be what saves us.
	e.deliver2(ev)
	if ps := e.payments("o"); len(ps) != 0 {
		t.Fatalf("the duplicate delivery recorded %+v", ps)
	}

	e.chargeDelay.Store(0)
	rctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = e.saga.Recover(rctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.payments("o")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // more lease periods: nothing may be recorded twice
	ps := e.payments("o")
	if len(ps) != 1 || ps[0].Status != payment.Authorized {
		t.Fatalf("after recovery: payments %+v", ps)
	}
	if got := e.outboxTypes(); strings.Join(got, ",") != "payments.authorized" {
		t.Fatalf("outbox %v", got)
	}
	if n, _ := e.store.PendingCalls(context.Background()); n != 0 {
		t.Fatalf("%d planned calls left", n)
	}
}

// An order cancelled while its charge was in flight is refunded: the
// cancellation found no payment to refund yet, so the charge's outcome
// plans the refund itself.
func TestCancelledWhileChargingIsRefunded(t *testing.T) {
	e := newEnv(t)
	e.chargeDelay.Store(int64(300 * time.Millisecond))
	e.placed("o", "4242424242424242")
	done := e.deliverAsync("inventory.reserved", map[string]string{"order_id": "o"})
	for e.charges.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	e.deliver("orders.cancelled", map[string]string{"order_id": "o", "reason": "saga_timeout"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = e.saga.Recover(rctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if ps := e.payments("o"); len(ps) == 1 && ps[0].Status == payment.Refunded {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("payments %+v, %d refunds", e.payments("o"), e.refunds.Load())
}

// An order that never charges keeps no card token: rejected before its
// reservation, or cancelled before payments even saw it placed (the two
// topics race), its token is forgotten in the same transaction.
func TestTokensOfOrdersNeverChargedAreForgotten(t *testing.T) {
	for name, events := range map[string]func(e *env){
		"rejected after placed": func(e *env) {
			e.placed("o", "4242424242424242")
			e.deliver("orders.rejected", map[string]string{"order_id": "o", "reason": "out_of_stock"})
		},
		"cancelled before placed": func(e *env) {
			e.deliver("orders.cancelled", map[string]string{"order_id": "o", "reason": "saga_timeout"})
			e.placed("o", "4242424242424242")
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			events(e)
			e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
			tokens := postgrestest.Strings(t, e.pool, `SELECT payment_token FROM payment_intents WHERE order_id = 'o'`)
			if len(tokens) != 1 || tokens[0] != "" || e.charges.Load() != 0 {
				t.Fatalf("tokens %q after %d charges, want the one intent's token forgotten and no charge", tokens, e.charges.Load())
			}
		})
	}
}
