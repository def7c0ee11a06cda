package saga_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/payments/internal/payment"
	"github.com/example/sagasuite/services/payments/internal/postgres"
	"github.com/example/sagasuite/services/payments/internal/psp"
	"github.com/example/sagasuite/services/payments/internal/pspclient"
	"github.com/example/sagasuite/services/payments/internal/saga"
)

// countingPSP is the real client, counting calls.
type countingPSP struct {
	*pspclient.Client
	charges, refunds atomic.Int64
}

func (c *countingPSP) Charge(ctx context.Context, key, token string, amount int64) (pspclient.Charge, error) {
	c.charges.Add(1)
	return c.Client.Charge(ctx, key, token, amount)
}

func (c *countingPSP) Refund(ctx context.Context, key, chargeID string) error {
	c.refunds.Add(1)
	return c.Client.Refund(ctx, key, chargeID)
}

type env struct {
	t      *testing.T
	store  *postgres.Store
	psp    *countingPSP
	pspURL string
	handle kafka.Handler
	// outboxTypes lists the event types written to the outbox, in order.
	outboxTypes func() []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := postgrestest.Pool(t, map[string]fs.FS{"payments": postgres.Migrations(), "inbox": inbox.Migrations(), "outbox": outbox.Migrations()})
	sim, err := psp.New("test-secret", noop.NewMeterProvider().Meter(""))
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserver.New(httpserver.Config{})
	sim.Routes(srv.Echo)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	e := &env{t: t, store: postgres.New(pool), pspURL: ts.URL}
	e.psp = &countingPSP{Client: pspclient.New(ts.URL, 0)}
	h := saga.New(e.store, e.psp, saga.Config{Backoff: 1}, tracenoop.NewTracerProvider())
	e.handle = inbox.Handler(pool, "payments", inbox.Route(h.Routes()))
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

func (e *env) token(card string) string {
	e.t.Helper()
	resp, err := http.Post(e.pspURL+"/tokens", "application/json", strings.NewReader(`{"card_number":"`+card+`"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("tokenize: %v %v", resp, err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.Token
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

func (e *env) placed(order, card string) {
	e.deliver("orders.placed", map[string]any{"order_id": order, "total_cents": 1234,
		"payment": map[string]string{"token": e.token(card), "card_last4": card[len(card)-4:]}})
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
			if e.psp.charges.Load() != 0 {
				t.Fatal("charged before the stock was reserved")
			}
			e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
		} else {
			e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
			if e.psp.charges.Load() != 0 {
				t.Fatal("charged before the order was known")
			}
			e.placed("o", "4242424242424242")
		}
		ps := e.payments("o")
		if len(ps) != 1 || ps[0].Status != payment.Authorized || ps[0].AmountCents != 1234 || ps[0].CardLast4 != "4242" || e.psp.charges.Load() != 1 {
			t.Fatalf("placed first %v: payments %+v, %d charges", placedFirst, ps, e.psp.charges.Load())
		}
		if got := e.outboxTypes(); len(got) != 1 || got[0] != "payments.authorized" {
			t.Fatalf("outbox %v", got)
		}
	}
}

func TestDeclinesAndProviderFailures(t *testing.T) {
	tests := []struct {
		card, status, reason, event string
		calls                       int64
	}{
		{psp.CardDeclined, payment.Declined, "card_declined", "payments.declined", 1},
		{psp.CardInsufficientFunds, payment.Declined, "insufficient_funds", "payments.declined", 1},
		{psp.CardProcessingError, payment.Failed, payment.ReasonUnavailable, "payments.failed", 3}, // retried, then given up
	}
	for _, tt := range tests {
		e := newEnv(t)
		e.placed("o", tt.card)
		e.deliver("inventory.reserved", map[string]string{"order_id": "o"})
		ps := e.payments("o")
		if len(ps) != 1 || ps[0].Status != tt.status || ps[0].Reason != tt.reason || e.psp.charges.Load() != tt.calls {
			t.Fatalf("card %s: payments %+v after %d calls", tt.card, ps, e.psp.charges.Load())
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
	if n := e.psp.charges.Load(); n != 0 || len(e.payments("o")) != 0 {
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
	if len(ps) != 1 || ps[0].Status != payment.Refunded || e.psp.refunds.Load() != 1 {
		t.Fatalf("payments %+v, %d refunds", ps, e.psp.refunds.Load())
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
