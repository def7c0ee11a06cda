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
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/guard"
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
	lease    time.Duration
	payments metric.Int64Counter
}

// New returns the handlers. psp applies the retries, bulkheads and
// breaker (pspclient.Guards). lease is how long a decided provider call
// may take before the recovery loop makes it again: longer than a call
// with all its retries can last.
func New(store *paymentsdb.Store, psp PSP, tp trace.TracerProvider, mp metric.MeterProvider, lease time.Duration) (*Handlers, error) {
	payments, err := mp.Meter("github.com/example/sagasuite/services/payments/internal/saga").Int64Counter("payments",
		metric.WithDescription("Payment outcomes recorded, by status (authorized, declined, failed, refunded) and reason."),
		metric.WithUnit("{payment}"))
	if err != nil {
		return nil, err
	}
	return &Handlers{store: store, psp: psp, lease: lease, payments: payments,
		tracer: tp.Tracer("github.com/example/sagasuite/services/payments/internal/saga")}, nil
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
	planned, err := h.store.PlanCall(ctx, tx, orderID, kind, h.lease)
	if err != nil || !planned {
		return err
	}
	inbox.AfterCommit(ctx, func(ctx context.Context) error { return h.Call(ctx, paymentsdb.Call{OrderID: orderID, Kind: kind}) })
	return nil
}

// Call makes a planned provider call and records its outcome. It is safe
// to run again for the same call (the recovery loop does after a crash):
// the provider sees the same idempotency key, and an outcome already
// recorded is not recorded twice.
func (h *Handlers) Call(ctx context.Context, c paymentsdb.Call) error {
	if c.Kind == paymentsdb.CallRefund {
		return h.refund(ctx, c.OrderID)
	}
	return h.chargeNow(ctx, c.OrderID)
}

func (h *Handlers) chargeNow(ctx context.Context, orderID string) error {
	in, err := h.store.Intent(ctx, nil, orderID)
	if err != nil {
		return err
	}
	if in.Cancelled || in.PaymentToken == "" {
		// Cancelled between the decision and the call: never charged.
		return h.store.InTx(ctx, func(tx pgx.Tx) error {
			if err := h.store.ForgetToken(ctx, tx, orderID); err != nil {
				return err
			}
			return h.store.CallDone(ctx, tx, orderID, paymentsdb.CallCharge)
		})
	}
	p := payment.Payment{PaymentID: uuid.Must(uuid.NewV7()).String(), OrderID: in.OrderID,
		AmountCents: in.AmountCents, CardLast4: in.CardLast4}
	ch, err := h.charge(ctx, in)
	var declined *pspclient.DeclinedError
	var typ string
	switch {
	case err == nil:
		p.Status, p.ChargeID, typ = payment.Authorized, ch.ChargeID, paymentevents.Authorized
	case errors.As(err, &declined):
		p.Status, p.Reason, typ = payment.Declined, declined.Reason, paymentevents.Declined
	case ctx.Err() != nil:
		return ctx.Err() // shutting down: the planned call stays, recovery makes it again
	default:
		// Unavailable after retries, breaker open, charge pool full, or a
		// request the provider refused: the step gives up and the saga
		// compensates (orders cancels, inventory releases).
		trace.SpanFromContext(ctx).SetAttributes(attribute.Bool("payment.rejected_locally", guard.Rejected(err)))
		p.Status, p.Reason, typ = payment.Failed, payment.ReasonUnavailable, paymentevents.Failed
	}
	recorded := false
	err = h.store.InTx(ctx, func(tx pgx.Tx) error {
		in, err := h.store.Intent(ctx, tx, orderID) // locked: one outcome per order
		if err != nil {
			return err
		}
		if _, found, err := h.store.Payment(ctx, tx, orderID); err != nil || found {
			return err // recorded by an earlier run of this call
		}
		if err := h.store.Insert(ctx, tx, p); err != nil {
			return err
		}
		if err := h.store.ForgetToken(ctx, tx, orderID); err != nil {
			return err
		}
		if err := h.store.CallDone(ctx, tx, orderID, paymentsdb.CallCharge); err != nil {
			return err
		}
		if in.Cancelled && p.Status == payment.Authorized {
			// The order was cancelled while the provider charged: give
			// the money back (orders ignores this late outcome).
			if _, err := h.store.PlanCall(ctx, tx, orderID, paymentsdb.CallRefund, 0); err != nil {
				return err
			}
		}
		recorded = true
		return emit(ctx, tx, typ, p)
	})
	if err == nil && recorded {
		h.recorded(ctx, p)
	}
	return err
}

// charge calls the provider; the order ID is the idempotency key, so the
// client's retries can never charge twice.
func (h *Handlers) charge(ctx context.Context, in payment.Intent) (pspclient.Charge, error) {
	ctx, span := h.tracer.Start(ctx, "charge card", trace.WithAttributes(
		attribute.String("order.id", in.OrderID), attribute.Int64("payment.amount_cents", in.AmountCents),
		attribute.String("payment.card_last4", in.CardLast4)))
	defer span.End()
	ch, err := h.psp.Charge(ctx, "charge-"+in.OrderID, in.PaymentToken, in.AmountCents)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return ch, err
}

// cancelled records the cancellation; money already taken is given back
// by a refund planned here and made after the commit.
func (h *Handlers) cancelled(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := kafka.DecodeValid[orderevents.OrderFinished](m)
	if err != nil {
		return err
	}
	if _, err := h.store.UpdateIntent(ctx, tx, e.OrderID, paymentsdb.IntentChange{Cancelled: true}); err != nil {
		return err
	}
	p, found, err := h.store.Payment(ctx, tx, e.OrderID)
	if err != nil || !found || p.Status != payment.Authorized {
		return err // nothing was taken (or a charge under way will see the cancellation)
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("saga.trigger", m.Type))
	return h.plan(ctx, tx, e.OrderID, paymentsdb.CallRefund)
}

// refund is the compensation: it gives back an authorized payment. A
// refund the provider cannot take now is made again later; it is never
// dropped.
func (h *Handlers) refund(ctx context.Context, orderID string) error {
	p, found, err := h.store.Payment(ctx, nil, orderID)
	if err != nil {
		return err
	}
	if !found || p.Status != payment.Authorized {
		return h.store.InTx(ctx, func(tx pgx.Tx) error { return h.store.CallDone(ctx, tx, orderID, paymentsdb.CallRefund) })
	}
	ctx, span := h.tracer.Start(ctx, "compensate: refund payment", trace.WithAttributes(
		attribute.String("order.id", orderID), attribute.String("saga.compensation", "refund_payment"),
		attribute.Int64("payment.amount_cents", p.AmountCents)))
	defer span.End()
	reason := ""
	err = h.psp.Refund(ctx, "refund-"+orderID, p.ChargeID)
	switch {
	case errors.Is(err, pspclient.ErrChargeNotFound):
		reason = "provider_has_no_charge" // e.g. a restarted simulator: nothing is held there
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		if ctx.Err() == nil {
			if perr := h.store.PostponeCall(ctx, orderID, paymentsdb.CallRefund, refundRetry); perr != nil {
				return errors.Join(err, perr)
			}
		}
		return fmt.Errorf("refund %s (made again in %v): %w", orderID, refundRetry, err)
	}
	refunded := payment.Payment{}
	err = h.store.InTx(ctx, func(tx pgx.Tx) error {
		p, found, err := h.store.Payment(ctx, tx, orderID) // locked
		if err != nil || !found || p.Status != payment.Authorized {
			return err
		}
		if err := h.store.SetStatus(ctx, tx, p.PaymentID, payment.Refunded, reason); err != nil {
			return err
		}
		if err := h.store.CallDone(ctx, tx, orderID, paymentsdb.CallRefund); err != nil {
			return err
		}
		p.Status, p.Reason = payment.Refunded, reason
		refunded = p
		return emit(ctx, tx, paymentevents.Refunded, p)
	})
	if err == nil && refunded.Status != "" {
		h.recorded(ctx, refunded)
	}
	return err
}

// refundRetry is how long a refund the provider refused waits before
// the recovery loop makes it again.
const refundRetry = 2 * time.Second

// Recover makes the provider calls that were decided but whose outcome
// was never recorded (a crash or shutdown between the two transactions,
// a refund the provider refused), every interval until ctx ends. Every
// replica may run it: a claimed call is not due again for a lease.
func (h *Handlers) Recover(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		calls, err := h.store.ClaimDue(ctx, 100, h.lease)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "claim provider calls", "error", err)
		}
		for _, c := range calls {
			cctx, span := h.tracer.Start(ctx, "recover provider call", trace.WithAttributes(
				attribute.String("order.id", c.OrderID), attribute.String("payment.call", c.Kind)))
			err := h.Call(cctx, c)
			span.End()
			if err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "recover provider call", "order_id", c.OrderID, "call", c.Kind, "error", err)
			} else if err == nil {
				log.InfoContext(ctx, "provider call recovered", "order_id", c.OrderID, "call", c.Kind)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func emit(ctx context.Context, tx pgx.Tx, typ string, p payment.Payment) error {
	ev, err := kafka.NewEvent(typ, paymentevents.Source, p.OrderID, paymentevents.PaymentOutcome{
		OrderID: p.OrderID, PaymentID: p.PaymentID, AmountCents: p.AmountCents, Reason: p.Reason})
	if err != nil {
		return err
	}
	return outbox.Write(ctx, tx, outbox.Message{Topic: paymentevents.Topic, Event: ev})
}
