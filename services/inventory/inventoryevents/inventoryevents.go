// Package inventoryevents is inventory's published event contract: the
// topic, the CloudEvents types inventory writes on it and their data. It
// is the one package of inventory other services may import
// (docs/architecture.md).
//
// The JSON shape is pinned by golden files (testdata/) and by the
// catalogue in docs/events.md; change all three together, and only by
// adding fields.
package inventoryevents

import "errors"

// Topic is where inventory announces what happened to an order's stock,
// keyed by order id.
const Topic = "inventory.events"

// Source is the CloudEvents source of every inventory event.
const Source = "/inventory"

// The event types on Topic.
const (
	Reserved  = "inventory.reserved"  // data: StockReserved
	Rejected  = "inventory.rejected"  // data: StockRejected
	Committed = "inventory.committed" // data: StockCommitted
	Released  = "inventory.released"  // data: StockReleased (compensation)
	Expired   = "inventory.expired"   // data: StockReleased, reason reservation_expired
)

// Types is every type inventory writes on Topic.
var Types = []string{Reserved, Rejected, Committed, Released, Expired}

// Reasons.
const (
	ReasonOutOfStock         = "out_of_stock"
	ReasonReservationExpired = "reservation_expired"
)

// Item is one SKU and how many of it.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// StockReserved is the data of inventory.reserved: every item is held.
type StockReserved struct {
	OrderID string `json:"order_id"`
	Items   []Item `json:"items"`
}

// StockRejected is the data of inventory.rejected: nothing is held.
type StockRejected struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"` // out_of_stock
	Detail  string `json:"detail"` // for people: which SKU was short
}

// StockCommitted is the data of inventory.committed: the reserved stock is sold.
type StockCommitted struct {
	OrderID string `json:"order_id"`
}

// StockReleased is the data of inventory.released and inventory.expired:
// the held stock went back. Reason is the event type that caused the
// release (released) or reservation_expired (expired).
type StockReleased struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// Ref is the part every inventory event shares; consumers that only need
// the order decode into it.
type Ref struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// Validate reports what a consumer cannot act on.
func (r Ref) Validate() error {
	if r.OrderID == "" {
		return errors.New("inventory event: order_id is empty")
	}
	return nil
}
