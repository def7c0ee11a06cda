package saga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/services/payments/internal/payment"
	"github.com/example/sagasuite/services/payments/internal/paymentsdb"
	"github.com/example/sagasuite/services/payments/internal/pspclient"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

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
func (h *Handlers) Call(ctx context.Context, c paymentsdb.Call) error {
	if c.Kind == paymentsdb.CallRefund {
		return h.refund(ctx, c.OrderID)
	}
	return h.chargeNow(ctx, c)
}

func (h *Handlers) chargeNow(ctx context.Context, c paymentsdb.Call) error {
	in, err := h.store.Intent(ctx, nil, c.OrderID)
	if err != nil {
		return err
	}
	if in.PaymentToken == "" { // settled already: nothing to send
		return h.store.InTx(ctx, func(tx pgx.Tx) error { return h.store.CallDone(ctx, tx, c.OrderID, paymentsdb.CallCharge) })
	}
	if in.Cancelled && c.Attempts == 0 {
		// Cancelled between the decision and this first call, which
		// nobody has sent yet (unless the recovery loop claimed it in
		// the meantime): never charged.
		dropped := false
		err := h.store.InTx(ctx, func(tx pgx.Tx) error {
			call, found, err := h.store.PlannedCall(ctx, tx, c.OrderID, paymentsdb.CallCharge)
			if err != nil || !found || call.Attempts > 0 {
				return err
			}
			dropped = true
			if err := h.store.ForgetToken(ctx, tx, c.OrderID); err != nil {
				return err
			}
			return h.store.CallDone(ctx, tx, c.OrderID, paymentsdb.CallCharge)
		})
		if err != nil || dropped {
			return err
		}
	}
	ch, err := h.charge(ctx, in)
	var declined *pspclient.DeclinedError
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
	case pspclient.Unknown(err) || (errors.Is(err, pspclient.ErrNotSent) && c.Attempts > 0):
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
	return h.settleCharge(ctx, c, p, typ, errors.Is(err, pspclient.ErrNotSent))
}

// settleCharge records the charge's definite outcome p (announced as typ)
// and forgets the call and the card token. notSent says that outcome is
// "this process sent nothing": it settles the call only if nobody else
// claimed it since c was read. A payment recorded FAILED
// earlier, while the charge was unknown, keeps its status: if the charge
// was made after all, its money is refunded. So is that of an order
// cancelled while the provider charged.
func (h *Handlers) settleCharge(ctx context.Context, c paymentsdb.Call, p payment.Payment, typ string, notSent bool) error {
	var recorded, refund bool
	err := h.store.InTx(ctx, func(tx pgx.Tx) error {
		recorded, refund = false, false
		in, err := h.store.Intent(ctx, tx, p.OrderID) // locked: one outcome per order
		if err != nil {
			return err
		}
		call, found, err := h.store.PlannedCall(ctx, tx, p.OrderID, paymentsdb.CallCharge)
		if err != nil || !found {
			return err // settled by an earlier run of this call
		}
		if notSent && call.Attempts != c.Attempts {
			return nil // the recovery loop claimed it meanwhile, and may have sent it: its to settle
		}
		if err := h.store.ForgetToken(ctx, tx, p.OrderID); err != nil {
			return err
		}
		if err := h.store.CallDone(ctx, tx, p.OrderID, paymentsdb.CallCharge); err != nil {
			return err
		}
		before, found, err := h.store.Payment(ctx, tx, p.OrderID)
		if err != nil {
			return err
		}
		if found {
			// FAILED while the charge was unknown: the order is
			// cancelled already, so money taken goes back.
			if p.Status != payment.Authorized || before.Status != payment.Failed {
				return nil
			}
			refund = true
			if err := h.store.SetChargeID(ctx, tx, before.PaymentID, p.ChargeID); err != nil {
				return err
			}
			_, err := h.store.PlanCall(ctx, tx, p.OrderID, paymentsdb.CallRefund, 0)
			return err
		}
		if err := h.store.Insert(ctx, tx, p); err != nil {
			return err
		}
		if in.Cancelled && p.Status == payment.Authorized {
			// The order was cancelled while the provider charged: give
			// the money back (orders ignores this late outcome).
			refund = true
			if _, err := h.store.PlanCall(ctx, tx, p.OrderID, paymentsdb.CallRefund, 0); err != nil {
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
func (h *Handlers) unknownCharge(ctx context.Context, c paymentsdb.Call, p payment.Payment, cause error) error {
	trace.SpanFromContext(ctx).AddEvent("charge outcome unknown: made again later with the same key",
		trace.WithAttributes(attribute.String("error", cause.Error())))
	h.cfg.Logger.WarnContext(ctx, "charge outcome unknown: made again later with the same key", "order_id", p.OrderID,
		"attempts", c.Attempts, "error", cause)
	var recorded bool
	var giveUpAt time.Time // when the order is given up, while it is not yet
	err := h.store.InTx(ctx, func(tx pgx.Tx) error {
		recorded, giveUpAt = false, time.Time{}
		if _, err := h.store.Intent(ctx, tx, p.OrderID); err != nil { // locked: one outcome per order
			return err
		}
		call, found, err := h.store.PlannedCall(ctx, tx, p.OrderID, paymentsdb.CallCharge)
		if err != nil || !found {
			return err
		}
		if at := call.CreatedAt.Add(h.cfg.DecideWithin); time.Now().Before(at) {
			giveUpAt = at
			return nil
		}
		if _, found, err := h.store.Payment(ctx, tx, p.OrderID); err != nil || found {
			return err // given up already
		}
		p.Status, p.Reason = payment.Failed, payment.ReasonUnavailable
		if err := h.store.Insert(ctx, tx, p); err != nil {
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
	return h.store.PostponeCall(ctx, p.OrderID, paymentsdb.CallCharge, giveUpAt)
}

// charge calls the provider; the order ID is the idempotency key, so the
// client's retries, and every later attempt to settle the call, can never
// charge twice.
func (h *Handlers) charge(ctx context.Context, in payment.Intent) (pspclient.Charge, error) {
	ctx, span := h.tracer.Start(ctx, "charge card", trace.WithAttributes(
		attribute.String("order.id", in.OrderID), attribute.Int64("payment.amount_cents", in.AmountCents),
		attribute.String("payment.card_last4", in.CardLast4)))
	defer span.End()
	ch, err := h.psp.Charge(ctx, "charge-"+in.OrderID, in.PaymentToken, in.AmountCents)
	if err != nil {
		span.SetAttributes(attribute.Bool("payment.outcome_unknown", pspclient.Unknown(err)))
		span.SetStatus(codes.Error, err.Error())
	}
	return ch, err
}

// refund is the compensation: it gives back the money the provider holds
// for an order. A refund the provider has not confirmed (whatever it
// answered instead: an error, no answer, not found) is made again later
// with the same key; it is never dropped, nor taken for done.
func (h *Handlers) refund(ctx context.Context, orderID string) error {
	p, found, err := h.store.Payment(ctx, nil, orderID)
	if err != nil {
		return err
	}
	if !found || !p.Holds() {
		return h.store.InTx(ctx, func(tx pgx.Tx) error { return h.store.CallDone(ctx, tx, orderID, paymentsdb.CallRefund) })
	}
	ctx, span := h.tracer.Start(ctx, "compensate: refund payment", trace.WithAttributes(
		attribute.String("order.id", orderID), attribute.String("saga.compensation", "refund_payment"),
		attribute.Int64("payment.amount_cents", p.AmountCents)))
	defer span.End()
	if err := h.psp.Refund(ctx, "refund-"+orderID, p.ChargeID); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		if ctx.Err() == nil {
			if perr := h.store.PostponeCall(ctx, orderID, paymentsdb.CallRefund, time.Time{}); perr != nil {
				return errors.Join(err, perr)
			}
		}
		return fmt.Errorf("refund %s (made again later): %w", orderID, err)
	}
	refunded := payment.Payment{}
	err = h.store.InTx(ctx, func(tx pgx.Tx) error {
		refunded = payment.Payment{}
		p, found, err := h.store.Payment(ctx, tx, orderID) // locked
		if err != nil || !found || !p.Holds() {
			return err
		}
		if err := h.store.SetStatus(ctx, tx, p.PaymentID, payment.Refunded, p.Reason); err != nil {
			return err
		}
		if err := h.store.CallDone(ctx, tx, orderID, paymentsdb.CallRefund); err != nil {
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
// every interval until ctx ends. Every replica may run it: a claimed call
// is not due again for a lease.
func (h *Handlers) Recover(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
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
func (h *Handlers) exportOutstanding(meter metric.Meter) error {
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
