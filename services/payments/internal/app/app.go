// Package app holds payments' use cases, its part in the order saga. It
// joins two facts about an order, "placed" (with the card token and
// amount, from orders) and "reserved" (from inventory), and charges once
// both are in, whichever arrived last. It refunds (the compensation) when
// an order is cancelled after its charge, and never charges an order
// cancelled before.
//
// No provider call runs inside a database transaction: a use case records
// the decision to call (a planned call) with the message's effects and
// commits; the call runs after the commit (Tx.AfterCommit); a second
// transaction records its outcome and the event. Recover makes the calls a
// crash left.
//
// app imports no adapter: paymentsdb implements Store and Tx, pspclient
// PSP, and saga (the Kafka handlers) decodes the events and calls the use
// cases in the inbox's transaction.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/internal/payment"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// Store is payments' records outside a transaction.
type Store interface {
	// InTx runs f in one transaction.
	InTx(ctx context.Context, f func(tx Tx) error) error
	Intent(ctx context.Context, orderID string) (payment.Intent, error)
	Payment(ctx context.Context, orderID string) (p payment.Payment, found bool, err error)
	// PostponeCall makes a planned call due again later (with backoff),
	// and no later than notAfter when that is set.
	PostponeCall(ctx context.Context, orderID, kind string, notAfter time.Time) error
	// ClaimDue claims up to limit planned calls that are due, for lease.
	ClaimDue(ctx context.Context, limit int, lease time.Duration) ([]payment.Call, error)
	// Outstanding counts the planned calls by kind.
	Outstanding(ctx context.Context) ([]payment.CallsOutstanding, error)
}

// Settling is what Tx.Settling returns, each row locked: the intent, the
// planned call (CallFound false: settled already) and the payment
// (PaymentFound false: none recorded yet).
type Settling struct {
	Intent       payment.Intent
	Call         payment.Call
	CallFound    bool
	Payment      payment.Payment
	PaymentFound bool
}

// Tx is one transaction on payments' records: a message's (the inbox's)
// or one a use case opens (Store.InTx).
type Tx interface {
	// UpdateIntent records c and returns the intent, locked until the
	// transaction ends, so events of one order arriving on different
	// topics are applied one by one.
	UpdateIntent(ctx context.Context, orderID string, c payment.IntentChange) (payment.Intent, error)
	// Intent returns the order's intent, locked.
	Intent(ctx context.Context, orderID string) (payment.Intent, error)
	// Payment returns the order's payment, locked.
	Payment(ctx context.Context, orderID string) (p payment.Payment, found bool, err error)
	Insert(ctx context.Context, p payment.Payment) error
	SetStatus(ctx context.Context, paymentID, status, reason string) error
	SetChargeID(ctx context.Context, paymentID, chargeID string) error
	// ForgetToken drops the card token: it is never needed again.
	ForgetToken(ctx context.Context, orderID string) error
	// PlanCall records the decision to make a provider call, due after
	// lease unless settled first; false when it was planned already.
	PlanCall(ctx context.Context, orderID, kind string, lease time.Duration) (bool, error)
	// PlanCharge is PlanCall for the order's charge, decided only while
	// no payment is recorded for it: the check and the plan in one
	// statement. False when a payment exists or the charge was planned
	// already.
	PlanCharge(ctx context.Context, orderID string, lease time.Duration) (bool, error)
	PlannedCall(ctx context.Context, orderID, kind string) (c payment.Call, found bool, err error)
	// Settling locks and returns, in this order and in one round trip,
	// what recording a call's outcome decides on: the order's intent
	// (one outcome per order), its planned call of kind and its payment.
	Settling(ctx context.Context, orderID, kind string) (Settling, error)
	// CallDone settles a planned call.
	CallDone(ctx context.Context, orderID, kind string) error
	// Emit announces a payments event (through the outbox).
	Emit(ctx context.Context, typ, orderID string, data any) error
	// AfterCommit runs f once the transaction has committed (the
	// provider call a use case decided).
	AfterCommit(ctx context.Context, f func(ctx context.Context) error)
}

// PSP is the provider as the use cases call it (pspclient, behind its
// retries, bulkheads and breaker). Its errors speak the domain's terms:
// payment.DeclinedError, payment.ErrRefused, payment.ErrNotSent, or
// unknown (payment.Unknown).
type PSP interface {
	Charge(ctx context.Context, key, orderID, token string, amountCents int64) (payment.Charge, error)
	Refund(ctx context.Context, key, chargeID string) error
}

// Payments runs the use cases.
type Payments struct {
	store    Store
	psp      PSP
	tracer   trace.Tracer
	log      *slog.Logger // hears of provider calls whose outcome is unknown
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
	// RecoverEvery is how often Recover looks for calls due again (a
	// cheap indexed look); 0 means 250 ms.
	RecoverEvery time.Duration
}

// New returns the use cases, reporting through tel. psp applies the
// retries, bulkheads and breaker (pspclient.Guards).
func New(store Store, psp PSP, tel observe.Bundle, cfg Config) (*Payments, error) {
	if err := tel.For("payments"); err != nil {
		return nil, err
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	if cfg.DecideWithin <= 0 {
		cfg.DecideWithin = 10 * time.Second
	}
	if cfg.RecoverEvery <= 0 {
		cfg.RecoverEvery = 250 * time.Millisecond
	}
	meter := tel.Meter("github.com/example/sagasuite/services/payments/internal/app")
	payments, err := meter.Int64Counter("payments",
		metric.WithDescription("Payment outcomes recorded, by status (authorized, declined, failed, refunded) and reason."),
		metric.WithUnit("{payment}"))
	if err != nil {
		return nil, err
	}
	h := &Payments{store: store, psp: psp, cfg: cfg, payments: payments, log: tel.Logger,
		tracer: tel.Tracer("github.com/example/sagasuite/services/payments/internal/app")}
	return h, h.exportOutstanding(meter)
}

// recorded counts an outcome once its transaction committed.
func (h *Payments) recorded(ctx context.Context, p payment.Payment) {
	h.payments.Add(ctx, 1, metric.WithAttributes(attribute.String("status", strings.ToLower(p.Status)), attribute.String("reason", p.Reason)))
}

// Placed records the first of the two facts the charge waits for: the
// order, with its card token and amount (e is valid: the adapter checked
// it). It plans the charge if the stock is reserved already.
func (h *Payments) Placed(ctx context.Context, tx Tx, e orderevents.OrderPlaced) error {
	in, err := tx.UpdateIntent(ctx, e.OrderID, payment.IntentChange{
		Placed: true, PaymentToken: e.Payment.Token, CardLast4: e.Payment.CardLast4, AmountCents: e.TotalCents})
	if err != nil {
		return err
	}
	if in.Cancelled { // cancelled first (events of two topics race): never charged
		return h.forgetUnused(ctx, tx, in)
	}
	return h.chargeIfReady(ctx, tx, in)
}

// Reserved records the second fact: inventory holds the order's stock. It
// plans the charge if the order is in already.
func (h *Payments) Reserved(ctx context.Context, tx Tx, orderID string) error {
	in, err := tx.UpdateIntent(ctx, orderID, payment.IntentChange{Reserved: true})
	if err != nil {
		return err
	}
	return h.chargeIfReady(ctx, tx, in)
}

// chargeIfReady decides to charge once both facts are in. The decision is
// recorded in this transaction (a planned provider call); the call itself
// runs after the commit, outside any transaction, and its outcome is
// recorded in a second one (settleCharge).
func (h *Payments) chargeIfReady(ctx context.Context, tx Tx, in payment.Intent) error {
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order.id", in.OrderID))
	if !in.ReadyToCharge() {
		return nil
	}
	// Never a second charge: not while one is planned, nor once a payment
	// is recorded (a second inventory.reserved for the order, say).
	planned, err := tx.PlanCharge(ctx, in.OrderID, h.cfg.Lease)
	if err != nil || !planned {
		return err
	}
	// Charged by this process once tx commits, with the intent as this
	// transaction decided on it: reading it again after the commit would
	// cost a statement a saga to learn of a cancellation in the moment
	// between the commit and the call, which settleCharge sees anyway (and
	// refunds).
	tx.AfterCommit(ctx, func(ctx context.Context) error {
		return h.chargeWith(ctx, payment.Call{OrderID: in.OrderID, Kind: payment.CallCharge}, in)
	})
	return nil
}

// plan records a provider call and runs it once tx commits.
func (h *Payments) plan(ctx context.Context, tx Tx, orderID, kind string) error {
	planned, err := tx.PlanCall(ctx, orderID, kind, h.cfg.Lease)
	if err != nil || !planned {
		return err
	}
	h.callAfterCommit(ctx, tx, orderID, kind)
	return nil
}

// callAfterCommit makes a call tx planned once tx commits: at once, by
// this process, which alone can have sent it until the recovery loop
// claims it (Attempts 0).
func (h *Payments) callAfterCommit(ctx context.Context, tx Tx, orderID, kind string) {
	tx.AfterCommit(ctx, func(ctx context.Context) error { return h.Call(ctx, payment.Call{OrderID: orderID, Kind: kind}) })
}

// Cancelled records the cancellation (trigger: the event that said so);
// money already taken is given back by a refund planned here and made
// after the commit. A charge still unsettled sees the cancellation when it
// settles, and refunds then.
func (h *Payments) Cancelled(ctx context.Context, tx Tx, orderID, trigger string) error {
	in, err := tx.UpdateIntent(ctx, orderID, payment.IntentChange{Cancelled: true})
	if err != nil {
		return err
	}
	p, found, err := tx.Payment(ctx, orderID)
	if err != nil {
		return err
	}
	if !found {
		return h.forgetUnused(ctx, tx, in)
	}
	if !p.Holds() {
		return nil // nothing was taken
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("saga.trigger", trigger))
	return h.plan(ctx, tx, orderID, payment.CallRefund)
}

// forgetUnused drops the card token of a cancelled order for which no
// charge was decided (none is planned; the caller knows no payment was
// recorded): nothing will ever use it, and a token kept is a token that
// can leak. A charge decided before the cancellation keeps its token: the
// call may be under way, and the call forgets it when it settles.
func (h *Payments) forgetUnused(ctx context.Context, tx Tx, in payment.Intent) error {
	if in.PaymentToken == "" {
		return nil
	}
	if _, planned, err := tx.PlannedCall(ctx, in.OrderID, payment.CallCharge); err != nil || planned {
		return err
	}
	return tx.ForgetToken(ctx, in.OrderID)
}

// A provider call (psp_calls row) is settled only by an answer that says
// for sure what the provider did: approved, declined, refused, or never
// sent. Until then the money may have been taken (a timeout, a reset, a
// 5xx: the provider may have charged after the client gave up), so the
// call stays and is made again with the same idempotency key, which the
// provider answers with what it did the first time. That is the only way
// an unknown charge is resolved; it is never taken for "not charged".
//
// An order does not wait for ever: after DecideWithin its payment is
// recorded FAILED and the saga compensates, while the call goes on. If
// the charge turns out to have been made, its money is refunded.

// Call makes a planned provider call and records its outcome. It is safe
// to run again for the same call (the recovery loop does after a crash,
// and for every call whose outcome was unknown): the provider sees the
// same idempotency key, and an outcome already recorded is not recorded
// twice. c.Attempts is 0 when the process that decided the call makes it
// right after the decision: nobody else can have sent it yet.
func (h *Payments) Call(ctx context.Context, c payment.Call) error {
	if c.Kind == payment.CallRefund {
		return h.refund(ctx, c.OrderID)
	}
	return h.chargeNow(ctx, c)
}

func (h *Payments) chargeNow(ctx context.Context, c payment.Call) error {
	in, err := h.store.Intent(ctx, c.OrderID)
	if err != nil {
		return err
	}
	return h.chargeWith(ctx, c, in)
}

// chargeWith makes the charge c of intent in, as read when c was planned
// (chargeIfReady) or since (chargeNow).
func (h *Payments) chargeWith(ctx context.Context, c payment.Call, in payment.Intent) error {
	if in.PaymentToken == "" { // settled already: nothing to send
		return h.store.InTx(ctx, func(tx Tx) error { return tx.CallDone(ctx, c.OrderID, payment.CallCharge) })
	}
	ch, err := h.charge(ctx, in)
	var declined *payment.DeclinedError
	p := payment.Payment{PaymentID: uuid.Must(uuid.NewV7()).String(), OrderID: in.OrderID,
		AmountCents: in.AmountCents, CardLast4: in.CardLast4}
	typ := ""
	switch {
	case err == nil:
		p.Status, p.ChargeID, typ = payment.Authorized, ch.ChargeID, paymentevents.Authorized
	case errors.As(err, &declined):
		p.Status, p.Reason, typ = payment.Declined, declined.Reason, paymentevents.Declined
	case ctx.Err() != nil:
		return ctx.Err() // shutting down: the planned call stays, recovery makes it again
	case payment.Unknown(err) || (errors.Is(err, payment.ErrNotSent) && c.Attempts > 0):
		// The provider may have charged (or a request sent before
		// this one may have): settled later, by the same key.
		return h.unknownCharge(ctx, c, p, err)
	default:
		// Refused by the provider, or never sent: nothing was taken.
		// The step gives up and the saga compensates (orders cancels,
		// inventory releases).
		trace.SpanFromContext(ctx).SetAttributes(attribute.Bool("payment.rejected_locally", guard.Rejected(err)))
		p.Status, p.Reason, typ = payment.Failed, payment.ReasonUnavailable, paymentevents.Failed
	}
	return h.settleCharge(ctx, c, p, typ, errors.Is(err, payment.ErrNotSent))
}

// settleCharge records the charge's definite outcome p (announced as typ)
// and forgets the call and the card token. notSent says that outcome is
// "this process sent nothing": it settles the call only if nobody else
// claimed it since c was read. A payment recorded FAILED
// earlier, while the charge was unknown, keeps its status: if the charge
// was made after all, its money is refunded. So is that of an order
// cancelled while the provider charged.
func (h *Payments) settleCharge(ctx context.Context, c payment.Call, p payment.Payment, typ string, notSent bool) error {
	var recorded, refund bool
	err := h.store.InTx(ctx, func(tx Tx) error {
		recorded, refund = false, false
		st, err := tx.Settling(ctx, p.OrderID, payment.CallCharge) // locked: one outcome per order
		if err != nil || !st.CallFound {
			return err // settled by an earlier run of this call
		}
		in, call, before := st.Intent, st.Call, st.Payment
		if notSent && call.Attempts != c.Attempts {
			return nil // the recovery loop claimed it meanwhile, and may have sent it: its to settle
		}
		if err := tx.ForgetToken(ctx, p.OrderID); err != nil {
			return err
		}
		if err := tx.CallDone(ctx, p.OrderID, payment.CallCharge); err != nil {
			return err
		}
		if st.PaymentFound {
			// FAILED while the charge was unknown: the order is
			// cancelled already, so money taken goes back.
			if p.Status != payment.Authorized || before.Status != payment.Failed {
				return nil
			}
			refund = true
			if err := tx.SetChargeID(ctx, before.PaymentID, p.ChargeID); err != nil {
				return err
			}
			_, err := tx.PlanCall(ctx, p.OrderID, payment.CallRefund, 0)
			return err
		}
		if err := tx.Insert(ctx, p); err != nil {
			return err
		}
		if in.Cancelled && p.Status == payment.Authorized {
			// The order was cancelled while the provider charged: give
			// the money back (orders ignores this late outcome).
			refund = true
			if _, err := tx.PlanCall(ctx, p.OrderID, payment.CallRefund, 0); err != nil {
				return err
			}
		}
		recorded = true
		return emit(ctx, tx, typ, p)
	})
	if err != nil {
		return err
	}
	if recorded {
		h.recorded(ctx, p)
	}
	if refund {
		return h.refund(ctx, p.OrderID)
	}
	return nil
}

// unknownCharge leaves a charge whose outcome is unknown to be made again
// (with backoff), and gives the order up (FAILED, payment_unavailable)
// once it has waited DecideWithin: the call itself stays until the
// provider says what it did.
func (h *Payments) unknownCharge(ctx context.Context, c payment.Call, p payment.Payment, cause error) error {
	trace.SpanFromContext(ctx).AddEvent("charge outcome unknown: made again later with the same key",
		trace.WithAttributes(attribute.String("error", cause.Error())))
	h.log.WarnContext(ctx, "charge outcome unknown: made again later with the same key", "order_id", p.OrderID,
		"attempts", c.Attempts, "error", cause)
	var recorded bool
	var giveUpAt time.Time // when the order is given up, while it is not yet
	err := h.store.InTx(ctx, func(tx Tx) error {
		recorded, giveUpAt = false, time.Time{}
		st, err := tx.Settling(ctx, p.OrderID, payment.CallCharge) // locked: one outcome per order
		if err != nil || !st.CallFound {
			return err
		}
		if at := st.Call.CreatedAt.Add(h.cfg.DecideWithin); time.Now().Before(at) {
			giveUpAt = at
			return nil
		}
		if st.PaymentFound {
			return nil // given up already
		}
		p.Status, p.Reason = payment.Failed, payment.ReasonUnavailable
		if err := tx.Insert(ctx, p); err != nil {
			return err
		}
		recorded = true
		return emit(ctx, tx, paymentevents.Failed, p)
	})
	if err != nil {
		return err
	}
	if recorded {
		h.recorded(ctx, p)
	}
	// Tried again with backoff, and at the latest when the order is due
	// to be given up.
	return h.store.PostponeCall(ctx, p.OrderID, payment.CallCharge, giveUpAt)
}

// charge calls the provider; the order ID is the idempotency key, so the
// client's retries, and every later attempt to settle the call, can never
// charge twice.
func (h *Payments) charge(ctx context.Context, in payment.Intent) (payment.Charge, error) {
	ctx, span := h.tracer.Start(ctx, "charge card", trace.WithAttributes(
		attribute.String("order.id", in.OrderID), attribute.Int64("payment.amount_cents", in.AmountCents),
		attribute.String("payment.card_last4", in.CardLast4)))
	defer span.End()
	ch, err := h.psp.Charge(ctx, "charge-"+in.OrderID, in.OrderID, in.PaymentToken, in.AmountCents)
	if err != nil {
		span.SetAttributes(attribute.Bool("payment.outcome_unknown", payment.Unknown(err)))
		span.SetStatus(codes.Error, err.Error())
	}
	return ch, err
}

// refund is the compensation: it gives back the money the provider holds
// for an order. A refund the provider has not confirmed (whatever it
// answered instead: an error, no answer, not found) is made again later
// with the same key; it is never dropped, nor taken for done.
func (h *Payments) refund(ctx context.Context, orderID string) error {
	p, found, err := h.store.Payment(ctx, orderID)
	if err != nil {
		return err
	}
	if !found || !p.Holds() {
		return h.store.InTx(ctx, func(tx Tx) error { return tx.CallDone(ctx, orderID, payment.CallRefund) })
	}
	ctx, span := h.tracer.Start(ctx, "compensate: refund payment", trace.WithAttributes(
		attribute.String("order.id", orderID), attribute.String("saga.compensation", "refund_payment"),
		attribute.Int64("payment.amount_cents", p.AmountCents)))
	defer span.End()
	if err := h.psp.Refund(ctx, "refund-"+orderID, p.ChargeID); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		if ctx.Err() == nil {
			if perr := h.store.PostponeCall(ctx, orderID, payment.CallRefund, time.Time{}); perr != nil {
				return errors.Join(err, perr)
			}
		}
		return fmt.Errorf("refund %s (made again later): %w", orderID, err)
	}
	refunded := payment.Payment{}
	err = h.store.InTx(ctx, func(tx Tx) error {
		refunded = payment.Payment{}
		p, found, err := tx.Payment(ctx, orderID) // locked
		if err != nil || !found || !p.Holds() {
			return err
		}
		if err := tx.SetStatus(ctx, p.PaymentID, payment.Refunded, p.Reason); err != nil {
			return err
		}
		if err := tx.CallDone(ctx, orderID, payment.CallRefund); err != nil {
			return err
		}
		p.Status = payment.Refunded
		refunded = p
		return emit(ctx, tx, paymentevents.Refunded, p)
	})
	if err == nil && refunded.Status != "" {
		h.recorded(ctx, refunded)
	}
	return err
}

// Recover makes the provider calls that were decided but whose outcome
// is not settled (a crash or shutdown between the decision and the
// outcome, an unknown outcome, a refund the provider has not confirmed),
// every Config.RecoverEvery until ctx ends. Every replica may run it: a
// claimed call is not due again for a lease.
func (h *Payments) Recover(ctx context.Context) error {
	log := h.log
	t := time.NewTicker(h.cfg.RecoverEvery)
	defer t.Stop()
	for {
		calls, err := h.store.ClaimDue(ctx, 100, h.cfg.Lease)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "claim provider calls", "error", err)
		}
		for _, c := range calls {
			cctx, span := h.tracer.Start(ctx, "recover provider call", trace.WithAttributes(
				attribute.String("order.id", c.OrderID), attribute.String("payment.call", c.Kind), attribute.Int("payment.call_attempts", c.Attempts)))
			err := h.Call(cctx, c)
			span.End()
			if err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "recover provider call", "order_id", c.OrderID, "call", c.Kind, "attempts", c.Attempts, "error", err)
			} else if err == nil {
				log.InfoContext(ctx, "provider call made again", "order_id", c.OrderID, "call", c.Kind, "attempts", c.Attempts)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// exportOutstanding publishes payments.provider_calls.outstanding{kind}
// and payments.provider_calls.oldest{kind}: money whose fate is not
// settled with the provider yet. An alert fires when one waits too long.
func (h *Payments) exportOutstanding(meter metric.Meter) error {
	count, err := meter.Int64ObservableGauge("payments.provider_calls.outstanding",
		metric.WithDescription("Provider calls (charges, refunds) decided and not settled yet: their outcome at the provider is not known for sure."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	oldest, err := meter.Float64ObservableGauge("payments.provider_calls.oldest",
		metric.WithDescription("Age of the oldest provider call not settled yet, by kind; 0 when none."), metric.WithUnit("s"))
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		out, err := h.store.Outstanding(ctx)
		if err != nil {
			return err
		}
		for _, c := range out {
			kind := metric.WithAttributes(attribute.String("kind", c.Kind))
			o.ObserveInt64(count, c.Count, kind)
			o.ObserveFloat64(oldest, c.Oldest.Seconds(), kind)
		}
		return nil
	}, count, oldest)
	return err
}

func emit(ctx context.Context, tx Tx, typ string, p payment.Payment) error {
	return tx.Emit(ctx, typ, p.OrderID, paymentevents.PaymentOutcome{
		OrderID: p.OrderID, PaymentID: p.PaymentID, AmountCents: p.AmountCents, Reason: p.Reason})
}
