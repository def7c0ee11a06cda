// Package saga is payments' part in the order saga. It joins two facts
// about an order, "placed" (with the card token and amount, from orders)
// and "reserved" (from inventory), and charges once both are in, whichever
// arrived last. It refunds (the compensation) when an order is cancelled
// after its charge, and never charges an order cancelled before.
package saga

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/services/payments/internal/payment"
	"github.com/example/sagasuite/services/payments/internal/postgres"
	"github.com/example/sagasuite/services/payments/internal/pspclient"
)

// Topics.
const (
	OrdersTopic    = "orders.events"
	InventoryTopic = "inventory.events"
	PaymentsTopic  = "payments.events"
	source         = "/payments"
)

// PSP is the provider as the saga uses it.
type PSP interface {
	Charge(ctx context.Context, key, token string, amountCents int64) (pspclient.Charge, error)
	Refund(ctx context.Context, key, chargeID string) error
}

// Handlers applies saga events to payments.
type Handlers struct {
	store  *postgres.Store
	psp    PSP
	tracer trace.Tracer
}

// New returns the handlers. psp applies the retries, bulkheads and
// breaker (pspclient.Guards).
func New(store *postgres.Store, psp PSP, tp trace.TracerProvider) *Handlers {
	return &Handlers{store: store, psp: psp, tracer: tp.Tracer("github.com/example/sagasuite/services/payments/internal/saga")}
}

// Routes maps every event type on the consumed topics to its handler.
func (h *Handlers) Routes() inbox.Routes {
	return inbox.Routes{
		"orders.placed":       h.placed,
		"orders.confirmed":    nil,
		"orders.rejected":     h.cancelled,
		"orders.cancelled":    h.cancelled,
		"inventory.reserved":  h.reserved,
		"inventory.rejected":  nil,
		"inventory.committed": nil,
		"inventory.released":  nil,
		"inventory.expired":   nil, // orders cancels; payments acts on orders.cancelled
	}
}

var last4 = regexp.MustCompile(`^[0-9]{4}$`)

type orderPlaced struct {
	OrderID    string `json:"order_id"`
	TotalCents int64  `json:"total_cents"`
	Payment    struct {
		Token     string `json:"token"`
		CardLast4 string `json:"card_last4"`
	} `json:"payment"`
}

type orderRef struct {
	OrderID string `json:"order_id"`
}

func (h *Handlers) placed(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	var e orderPlaced
	if err := m.Decode(&e); err != nil {
		return err
	}
	if e.OrderID == "" || e.TotalCents <= 0 || e.Payment.Token == "" || !last4.MatchString(e.Payment.CardLast4) {
		return kafka.Permanent(errors.New("orders.placed needs order_id, total_cents > 0, payment.token and payment.card_last4"))
	}
	in, err := h.store.UpdateIntent(ctx, tx, e.OrderID, postgres.IntentChange{
		Placed: true, PaymentToken: e.Payment.Token, CardLast4: e.Payment.CardLast4, AmountCents: e.TotalCents})
	if err != nil {
		return err
	}
	return h.chargeIfReady(ctx, tx, in)
}

func (h *Handlers) reserved(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := decodeRef(m)
	if err != nil {
		return err
	}
	in, err := h.store.UpdateIntent(ctx, tx, e.OrderID, postgres.IntentChange{Reserved: true})
	if err != nil {
		return err
	}
	return h.chargeIfReady(ctx, tx, in)
}

func (h *Handlers) chargeIfReady(ctx context.Context, tx pgx.Tx, in payment.Intent) error {
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order.id", in.OrderID))
	if !in.ReadyToCharge() {
		return nil
	}
	if _, found, err := h.store.Payment(ctx, tx, in.OrderID); err != nil || found {
		return err
	}
	p := payment.Payment{PaymentID: uuid.Must(uuid.NewV7()).String(), OrderID: in.OrderID,
		AmountCents: in.AmountCents, CardLast4: in.CardLast4}
	ch, err := h.charge(ctx, in)
	var declined *pspclient.DeclinedError
	var typ string
	switch {
	case err == nil:
		p.Status, p.ChargeID, typ = payment.Authorized, ch.ChargeID, "payments.authorized"
	case errors.As(err, &declined):
		p.Status, p.Reason, typ = payment.Declined, declined.Reason, "payments.declined"
	case ctx.Err() != nil:
		return ctx.Err() // shutting down: the message is redelivered, nothing is recorded
	default:
		// Unavailable after retries, breaker open, charge pool full, or a
		// request the provider refused: the step gives up and the saga
		// compensates (orders cancels, inventory releases).
		trace.SpanFromContext(ctx).SetAttributes(attribute.Bool("payment.rejected_locally", guard.Rejected(err)))
		p.Status, p.Reason, typ = payment.Failed, payment.ReasonUnavailable, "payments.failed"
	}
	if err := h.store.Insert(ctx, tx, p); err != nil {
		return err
	}
	if err := h.store.ForgetToken(ctx, tx, in.OrderID); err != nil {
		return err
	}
	return emit(ctx, tx, typ, p)
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

func (h *Handlers) cancelled(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
	e, err := decodeRef(m)
	if err != nil {
		return err
	}
	if _, err := h.store.UpdateIntent(ctx, tx, e.OrderID, postgres.IntentChange{Cancelled: true}); err != nil {
		return err
	}
	p, found, err := h.store.Payment(ctx, tx, e.OrderID)
	if err != nil || !found || p.Status != payment.Authorized {
		return err // nothing was taken: nothing to give back
	}
	ctx, span := h.tracer.Start(ctx, "compensate: refund payment", trace.WithAttributes(
		attribute.String("order.id", e.OrderID), attribute.String("saga.compensation", "refund_payment"),
		attribute.String("saga.trigger", m.Type), attribute.Int64("payment.amount_cents", p.AmountCents)))
	defer span.End()
	reason := ""
	err = h.psp.Refund(ctx, "refund-"+e.OrderID, p.ChargeID)
	switch {
	case errors.Is(err, pspclient.ErrChargeNotFound):
		reason = "provider_has_no_charge" // e.g. a restarted simulator: nothing is held there
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return fmt.Errorf("refund %s: %w", e.OrderID, err) // retried by the consumer: a refund is never dropped
	}
	if err := h.store.SetStatus(ctx, tx, p.PaymentID, payment.Refunded, reason); err != nil {
		return err
	}
	p.Status, p.Reason = payment.Refunded, reason
	return emit(ctx, tx, "payments.refunded", p)
}

func decodeRef(m kafka.Message) (orderRef, error) {
	var e orderRef
	if err := m.Decode(&e); err != nil {
		return e, err
	}
	if e.OrderID == "" {
		return e, kafka.Permanent(fmt.Errorf("%s without order_id", m.Type))
	}
	return e, nil
}

func emit(ctx context.Context, tx pgx.Tx, typ string, p payment.Payment) error {
	ev, err := kafka.NewEvent(typ, source, p.OrderID, map[string]any{
		"order_id": p.OrderID, "payment_id": p.PaymentID, "amount_cents": p.AmountCents, "reason": p.Reason})
	if err != nil {
		return err
	}
	return outbox.Write(ctx, tx, outbox.Message{Topic: PaymentsTopic, Event: ev})
}
