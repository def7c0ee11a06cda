// Package payment is payments' domain: one payment per order, charged once
// the order is placed and its stock reserved, refunded if the order is
// cancelled after the charge.
package payment

// Statuses (api/openapi.yaml, Payment).
const (
	Authorized = "AUTHORIZED"
	Declined   = "DECLINED"
	Refunded   = "REFUNDED"
	Failed     = "FAILED"
)

// ReasonUnavailable is the reason of a payment the provider could not take.
const ReasonUnavailable = "payment_unavailable"

// Payment is what the API shows. A card is only ever known by its last
// four digits here.
type Payment struct {
	PaymentID   string `json:"payment_id"`
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"`
	CardLast4   string `json:"card_last4"`
	Reason      string `json:"reason"`
	ChargeID    string `json:"-"`
}

// Holds reports whether the provider holds money for p: it was
// authorized, or it failed while its charge was unknown and the charge
// turned out to have been made (ChargeID set). Either is refunded when
// the order does not go through.
func (p Payment) Holds() bool {
	return p.Status == Authorized || (p.Status == Failed && p.ChargeID != "")
}

// Intent is what payments knows of an order before charging: the saga's
// join point. The charge happens when the order is placed and its stock
// reserved, whichever event arrives last, unless it was cancelled first.
type Intent struct {
	OrderID      string
	PaymentToken string
	CardLast4    string
	AmountCents  int64
	Placed       bool
	Reserved     bool
	Cancelled    bool
}

// ReadyToCharge reports whether both facts are in and nothing stops it.
func (i Intent) ReadyToCharge() bool {
	return i.Placed && i.Reserved && !i.Cancelled && i.PaymentToken != ""
}
