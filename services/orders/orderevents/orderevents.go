// Package orderevents is orders' published event contract: the topic, the
// CloudEvents types orders writes on it and their data. It is the one
// package of orders other services may import (docs/architecture.md):
// consumers decode with these structs instead of re-declaring them, so a
// renamed type or field breaks their build, not their dead-letter queue.
//
// The JSON shape is pinned by golden files (testdata/) and by the
// catalogue in docs/events.md; change all three together, and only by
// adding: consumers are tolerant readers, but they cannot read a field
// that went away.
package orderevents

import (
	"errors"
	"fmt"
)

// Topic is where orders announces every change of an order, keyed by order id.
const Topic = "orders.events"

// Source is the CloudEvents source of every orders event.
const Source = "/orders"

// The event types on Topic.
const (
	Placed    = "orders.placed"    // data: OrderPlaced
	Confirmed = "orders.confirmed" // data: OrderFinished
	Rejected  = "orders.rejected"  // data: OrderFinished
	Cancelled = "orders.cancelled" // data: OrderFinished
)

// Types is every type orders writes on Topic. A consumer's routes cover
// all of them (each consumer has a test for it).
var Types = []string{Placed, Confirmed, Rejected, Cancelled}

// Item is one line of a placed order.
type Item struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// Payment is what payments needs to charge: the card sealed to the
// provider's public key (only the provider can open it) and its last four
// digits, never the card number.
type Payment struct {
	Token     string `json:"token"`
	CardLast4 string `json:"card_last4"`
}

// OrderPlaced is the data of orders.placed.
type OrderPlaced struct {
	OrderID    string  `json:"order_id"`
	CustomerID string  `json:"customer_id"`
	Items      []Item  `json:"items"`
	TotalCents int64   `json:"total_cents"`
	Currency   string  `json:"currency"`
	Payment    Payment `json:"payment"`
}

// Validate reports what a consumer cannot act on: such a message is
// dead-lettered (wrap the error with kafka.Permanent).
func (p OrderPlaced) Validate() error {
	var errs []error
	if p.OrderID == "" {
		errs = append(errs, errors.New("order_id is empty"))
	}
	if len(p.Items) == 0 {
		errs = append(errs, errors.New("items is empty"))
	}
	seen := make(map[string]bool, len(p.Items))
	for i, it := range p.Items {
		if it.SKU == "" || it.Quantity <= 0 {
			errs = append(errs, fmt.Errorf("items[%d]: sku empty or quantity not positive", i))
		}
		if seen[it.SKU] {
			errs = append(errs, fmt.Errorf("items[%d]: sku %q listed twice", i, it.SKU))
		}
		seen[it.SKU] = true
	}
	if p.TotalCents <= 0 {
		errs = append(errs, errors.New("total_cents is not positive"))
	}
	if p.Payment.Token == "" || p.Payment.CardLast4 == "" {
		errs = append(errs, errors.New("payment.token or payment.card_last4 is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", Placed, err)
	}
	return nil
}

// OrderFinished is the data of orders.confirmed, orders.rejected and
// orders.cancelled: the order's terminal status is the event type.
type OrderFinished struct {
	OrderID    string `json:"order_id"`
	Reason     string `json:"reason"` // empty when confirmed; out_of_stock, card_declined, saga_timeout, …
	TotalCents int64  `json:"total_cents"`
}

// Validate reports what a consumer cannot act on.
func (f OrderFinished) Validate() error {
	if f.OrderID == "" {
		return errors.New("order finished: order_id is empty")
	}
	return nil
}

// Ref is the part every orders event shares: its order. A consumer that
// only needs the order decodes any orders event into it.
type Ref struct {
	OrderID string `json:"order_id"`
}

// Validate reports what a consumer cannot act on.
func (r Ref) Validate() error {
	if r.OrderID == "" {
		return errors.New("order event: order_id is empty")
	}
	return nil
}
