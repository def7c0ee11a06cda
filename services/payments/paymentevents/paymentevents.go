// Package paymentevents is payments' published event contract: the topic,
// the CloudEvents types payments writes on it and their data. It is the
// one package of payments other services may import
// (docs/architecture.md).
//
// The JSON shape is pinned by golden files (testdata/) and by the
// catalogue in docs/events.md; change all three together, and only by
// adding fields.
package paymentevents

import "errors"

// Topic is where payments announces the outcome of each charge and
// refund, keyed by order id.
const Topic = "payments.events"

// Source is the CloudEvents source of every payments event.
const Source = "/payments"

// The event types on Topic; every one carries a PaymentOutcome.
const (
	Authorized = "payments.authorized" // the provider approved the charge
	Declined   = "payments.declined"   // the provider declined: reason card_declined or insufficient_funds
	Failed     = "payments.failed"     // the provider was unavailable: reason payment_unavailable
	Refunded   = "payments.refunded"   // compensation: the charge was refunded
)

// Types is every type payments writes on Topic.
var Types = []string{Authorized, Declined, Failed, Refunded}

// Reasons.
const (
	ReasonCardDeclined       = "card_declined"
	ReasonInsufficientFunds  = "insufficient_funds"
	ReasonPaymentUnavailable = "payment_unavailable"
)

// PaymentOutcome is the data of every payments event.
type PaymentOutcome struct {
	OrderID     string `json:"order_id"`
	PaymentID   string `json:"payment_id"`
	AmountCents int64  `json:"amount_cents"`
	Reason      string `json:"reason"` // empty for authorized and refunded
}

// Validate reports what a consumer cannot act on.
func (p PaymentOutcome) Validate() error {
	if p.OrderID == "" {
		return errors.New("payment outcome: order_id is empty")
	}
	return nil
}

// Ref is the part every payments event shares: its order. A consumer that
// only needs the order decodes any payments event into it.
type Ref struct {
	OrderID string `json:"order_id"`
}

// Validate reports what a consumer cannot act on.
func (r Ref) Validate() error {
	if r.OrderID == "" {
		return errors.New("payment event: order_id is empty")
	}
	return nil
}
