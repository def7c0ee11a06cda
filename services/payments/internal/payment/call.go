package payment

import "time"

// IntentChange is the fact one event adds to an order's intent.
type IntentChange struct {
	Placed       bool
	PaymentToken string
	CardLast4    string
	AmountCents  int64
	Reserved     bool
	Cancelled    bool
}

// Kinds of provider call.
const (
	CallCharge = "charge"
	CallRefund = "refund"
)

// Call is a provider call decided and not yet settled: its outcome at the
// provider is not known for sure.
type Call struct {
	OrderID string
	Kind    string
	// Attempts counts the times the recovery loop claimed the call; 0
	// means only the process that decided it can have sent it.
	Attempts  int
	CreatedAt time.Time
}

// CallsOutstanding is what the provider calls not yet settled look like.
type CallsOutstanding struct {
	Kind   string
	Count  int64
	Oldest time.Duration // age of the oldest
}
