// Package saga is payments' part in the order saga. It joins two facts
// about an order, "placed" (with the card token and amount, from orders)
// and "reserved" (from inventory), and charges once both are in, whichever
// arrived last. It refunds (the compensation) when an order is cancelled
// after its charge, and never charges an order cancelled before.
//
// No provider call runs inside a database transaction: the handler
// records the decision to call (psp_calls) with the message's effects and
// commits; the call runs after the commit; a second transaction records
// its outcome and the event. Recover makes the calls a crash left.
package saga

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/internal/payment"
	"github.com/example/sagasuite/services/payments/internal/paymentsdb"
	"github.com/example/sagasuite/services/payments/internal/pspclient"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// Topics payments consumes; it writes on paymentevents.Topic.
var Topics = []string{orderevents.Topic, inventoryevents.Topic}

// PSP is the provider as the saga uses it.
type PSP interface {
	Charge(ctx context.Context, key, token string, amountCents int64) (pspclient.Charge, error)
	Refund(ctx context.Context, key, chargeID string) error
}

// Handlers applies saga events to payments.
type Handlers struct {
	store    *paymentsdb.Store
	psp      PSP
	tracer   trace.Tracer
	cfg      Config
	payments metric.Int64Counter
}

// Config tunes the provider calls. The zero value is valid.
type Config struct {
	// Lease is how long a claimed provider call may take before the
	// recovery loop makes it again: longer than a call with all its
	// retries can last; 0 means 15 s.
	Lease time.Duration
	// DecideWithin is how long an order waits for its charge to settle
	// (an unknown outcome: a timeout, a reset, a 5xx) before payments
	// gives up on the saga step: it records the payment FAILED
	// (payment_unavailable), so the order is cancelled and its stock
	// released, and goes on settling the charge with the provider,
	// refunding it if it was made after all; 0 means 10 s. Keep it under
	// orders' SAGA_TIMEOUT.
	DecideWithin time.Duration
	// Logger hears of provider calls whose outcome is unknown; nil means
	// slog.Default().
	Logger *slog.Logger
}

// New returns the handlers. psp applies the retries, bulkheads and
// breaker (pspclient.Guards).
func New(store *paymentsdb.Store, psp PSP, tp trace.TracerProvider, mp metric.MeterProvider, cfg Config) (*Handlers, error) {
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	if cfg.DecideWithin <= 0 {
		cfg.DecideWithin = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	meter := mp.Meter("github.com/example/sagasuite/services/payments/internal/saga")
	payments, err := meter.Int64Counter("payments",
		metric.WithDescription("Payment outcomes recorded, by status (authorized, declined, failed, refunded) and reason."),
		metric.WithUnit("{payment}"))
	if err != nil {
		return nil, err
	}
	h := &Handlers{store: store, psp: psp, cfg: cfg, payments: payments,
		tracer: tp.Tracer("github.com/example/sagasuite/services/payments/internal/saga")}
	return h, h.exportOutstanding(meter)
}

// recorded counts an outcome once its transaction committed.
func (h *Handlers) recorded(ctx context.Context, p payment.Payment) {
	h.payments.Add(ctx, 1, metric.WithAttributes(attribute.String("status", strings.ToLower(p.Status)), attribute.String("reason", p.Reason)))
}

// Routes maps every event type on the consumed topics to its handler.
func (h *Handlers) Routes() inbox.Routes {
	return inbox.Routes{
		orderevents.Placed:        h.placed,
		orderevents.Confirmed:     nil,
		orderevents.Rejected:      h.cancelled,
		orderevents.Cancelled:     h.cancelled,
		inventoryevents.Reserved:  h.reserved,
		inventoryevents.Rejected:  nil,
		inventoryevents.Committed: nil,
		inventoryevents.Released:  nil,
		inventoryevents.Expired:   nil, // orders cancels; payments acts on orders.cancelled
	}
}

var last4 = regexp.MustCompile(`^[0-9]{4}$`)

func (h *Handlers) placed(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := kafka.DecodeValid[orderevents.OrderPlaced](m)
	if err != nil {
		return err
	}
	if !last4.MatchString(e.Payment.CardLast4) {
		return kafka.Permanent(errors.New("orders.placed: payment.card_last4 is not four digits"))
	}
	in, err := h.store.UpdateIntent(ctx, tx, e.OrderID, paymentsdb.IntentChange{
		Placed: true, PaymentToken: e.Payment.Token, CardLast4: e.Payment.CardLast4, AmountCents: e.TotalCents})
	if err != nil {
		return err
	}
	return h.chargeIfReady(ctx, tx, in)
}

func (h *Handlers) reserved(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := kafka.DecodeValid[inventoryevents.Ref](m)
	if err != nil {
		return err
	}
	in, err := h.store.UpdateIntent(ctx, tx, e.OrderID, paymentsdb.IntentChange{Reserved: true})
	if err != nil {
		return err
	}
	return h.chargeIfReady(ctx, tx, in)
}

// chargeIfReady decides to charge once both facts are in. The decision is
// recorded in this transaction (a planned provider call); the call itself
// runs after the commit, outside any transaction, and its outcome is
// recorded in a second one (settleCharge).
func (h *Handlers) chargeIfReady(ctx context.Context, tx pgx.Tx, in payment.Intent) error {
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order.id", in.OrderID))
	if !in.ReadyToCharge() {
		return nil
	}
	if _, found, err := h.store.Payment(ctx, tx, in.OrderID); err != nil || found {
		return err
	}
	return h.plan(ctx, tx, in.OrderID, paymentsdb.CallCharge)
}

// plan records a provider call and runs it once tx commits.
func (h *Handlers) plan(ctx context.Context, tx pgx.Tx, orderID, kind string) error {
	planned, err := h.store.PlanCall(ctx, tx, orderID, kind, h.cfg.Lease)
	if err != nil || !planned {
		return err
	}
	// Made at once after the commit by this process, which alone can
	// have sent it until the recovery loop claims it (Attempts 0).
	inbox.AfterCommit(ctx, func(ctx context.Context) error { return h.Call(ctx, paymentsdb.Call{OrderID: orderID, Kind: kind}) })
	return nil
}

// cancelled records the cancellation; money already taken is given back
// by a refund planned here and made after the commit. A charge still
// unsettled sees the cancellation when it settles, and refunds then.
func (h *Handlers) cancelled(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := kafka.DecodeValid[orderevents.OrderFinished](m)
	if err != nil {
		return err
	}
	if _, err := h.store.UpdateIntent(ctx, tx, e.OrderID, paymentsdb.IntentChange{Cancelled: true}); err != nil {
		return err
	}
	p, found, err := h.store.Payment(ctx, tx, e.OrderID)
	if err != nil || !found || !p.Holds() {
		return err // nothing was taken (or a charge under way will see the cancellation)
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("saga.trigger", m.Type))
	return h.plan(ctx, tx, e.OrderID, paymentsdb.CallRefund)
}

func emit(ctx context.Context, tx pgx.Tx, typ string, p payment.Payment) error {
	ev, err := kafka.NewEvent(typ, paymentevents.Source, p.OrderID, paymentevents.PaymentOutcome{
		OrderID: p.OrderID, PaymentID: p.PaymentID, AmountCents: p.AmountCents, Reason: p.Reason})
	if err != nil {
		return err
	}
	return outbox.Write(ctx, tx, outbox.Message{Topic: paymentevents.Topic, Event: ev})
}
