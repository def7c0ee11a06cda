// Package order is the order aggregate, event-sourced: an order is the
// fold of its events (OrderPlaced, then exactly one of OrderConfirmed,
// OrderRejected or OrderCancelled). Commands check the rules against the
// current state and return the event that records the decision; Apply is
// the only place state changes.
package order

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status of an order.
type Status string

// Statuses: PENDING, then exactly one terminal status.
const (
	Pending   Status = "PENDING"
	Confirmed Status = "CONFIRMED"
	Rejected  Status = "REJECTED"
	Cancelled Status = "CANCELLED"
)

// Reasons for REJECTED and CANCELLED.
const (
	ReasonOutOfStock         = "out_of_stock"
	ReasonCardDeclined       = "card_declined"
	ReasonInsufficientFunds  = "insufficient_funds"
	ReasonPaymentUnavailable = "payment_unavailable"
	ReasonSagaTimeout        = "saga_timeout"
)

// Event types as stored.
const (
	TypePlaced    = "OrderPlaced"
	TypeConfirmed = "OrderConfirmed"
	TypeRejected  = "OrderRejected"
	TypeCancelled = "OrderCancelled"
	TypeNoteAdded = "OrderNoteAdded"
)

// DefaultCurrency is what every order was priced in before orders carried
// a currency (OrderPlaced schema 1).
const DefaultCurrency = "USD"

// Errors callers match.
var (
	// ErrFinished: the order already has its terminal status.
	ErrFinished = errors.New("order is finished")
	ErrNotFound = errors.New("order not found")
)

// Item is one line of an order.
type Item struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// Order is the aggregate's state.
type Order struct {
	ID         string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Status     Status    `json:"status"`
	Reason     string    `json:"reason"`
	Items      []Item    `json:"items"`
	TotalCents int64     `json:"total_cents"`
	Currency   string    `json:"currency"`
	Notes      int       `json:"notes"` // how many notes the audit trail holds
	Version    int64     `json:"version"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Event is one fact about an order.
type Event struct {
	Type string
	At   time.Time
	Data any // Placed, Finished or NoteAdded
}

// Placed is the data of OrderPlaced. Schema 2 added Currency.
type Placed struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Items      []Item `json:"items"`
	TotalCents int64  `json:"total_cents"`
	Currency   string `json:"currency"`
	CardLast4  string `json:"card_last4"`
}

// Finished is the data of the terminal events.
type Finished struct {
	Reason string `json:"reason,omitempty"`
}

// NoteAdded is the data of OrderNoteAdded: a remark for the audit trail
// (customer service, fraud review), allowed whatever the status.
type NoteAdded struct {
	Text   string `json:"text"`
	Author string `json:"author"`
}

// Place decides a new order. Inputs are validated by ValidatePlace first.
func Place(id, customerID string, items []Item, cardLast4 string, now time.Time) Event {
	var total int64
	for _, it := range items {
		total += it.Quantity * it.UnitPriceCents
	}
	return Event{Type: TypePlaced, At: now, Data: Placed{OrderID: id, CustomerID: customerID, Items: items, TotalCents: total,
		Currency: DefaultCurrency, CardLast4: cardLast4}}
}

// AddNote records a note.
func (o *Order) AddNote(text, author string, now time.Time) Event {
	return Event{Type: TypeNoteAdded, At: now, Data: NoteAdded{Text: text, Author: author}}
}

// Confirm records that the order was paid for.
func (o *Order) Confirm(now time.Time) (Event, error) {
	return o.finish(TypeConfirmed, "", now)
}

// Reject records that the order could not be filled.
func (o *Order) Reject(reason string, now time.Time) (Event, error) {
	return o.finish(TypeRejected, reason, now)
}

// Cancel records that the order was given up after it was accepted.
func (o *Order) Cancel(reason string, now time.Time) (Event, error) {
	return o.finish(TypeCancelled, reason, now)
}

func (o *Order) finish(typ, reason string, now time.Time) (Event, error) {
	if o.Status != Pending {
		return Event{}, fmt.Errorf("%s %s: %w (status %s)", typ, o.ID, ErrFinished, o.Status)
	}
	return Event{Type: typ, At: now, Data: Finished{Reason: reason}}, nil
}

// Apply folds e into the order.
func (o *Order) Apply(e Event) error {
	switch d := e.Data.(type) {
	case Placed:
		*o = Order{ID: d.OrderID, CustomerID: d.CustomerID, Status: Pending, Items: d.Items, TotalCents: d.TotalCents,
			Currency: d.Currency, CreatedAt: e.At}
	case NoteAdded:
		o.Notes++
	case Finished:
		if o.Status != Pending {
			return fmt.Errorf("apply %s to a %s order: %w", e.Type, o.Status, ErrFinished)
		}
		o.Status, o.Reason = terminal[e.Type], d.Reason
	default:
		return fmt.Errorf("apply: unknown event data %T", e.Data)
	}
	o.Version++
	o.UpdatedAt = e.At
	return nil
}

var terminal = map[string]Status{TypeConfirmed: Confirmed, TypeRejected: Rejected, TypeCancelled: Cancelled}

// TerminalTypes are the event types that end an order (StatusAfter
// knows them): what a client waiting for the outcome waits for.
var TerminalTypes = []string{TypeConfirmed, TypeRejected, TypeCancelled}

// StatusAfter is the terminal status an event type records, if any.
func StatusAfter(eventType string) (Status, bool) {
	s, ok := terminal[eventType]
	return s, ok
}

// Schemas are the current shape version of each event type; Encode writes
// them and Decode upcasts older ones.
var Schemas = map[string]int{TypePlaced: 2, TypeConfirmed: 1, TypeRejected: 1, TypeCancelled: 1, TypeNoteAdded: 1}

// Encode returns an event's stored form and its schema version.
func Encode(e Event) (json.RawMessage, int, error) {
	b, err := json.Marshal(e.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("encode %s: %w", e.Type, err)
	}
	return b, Schemas[e.Type], nil
}

// Decode reads a stored event of any schema version, upcasting old shapes
// to the current one first.
func Decode(typ string, schema int, at time.Time, data []byte) (Event, error) {
	data, err := upcast(typ, schema, data)
	if err != nil {
		return Event{}, err
	}
	e := Event{Type: typ, At: at}
	switch typ {
	case TypePlaced:
		var d Placed
		err = json.Unmarshal(data, &d)
		e.Data = d
	case TypeConfirmed, TypeRejected, TypeCancelled:
		var d Finished
		err = json.Unmarshal(data, &d)
		e.Data = d
	case TypeNoteAdded:
		var d NoteAdded
		err = json.Unmarshal(data, &d)
		e.Data = d
	default:
		return e, fmt.Errorf("unknown order event type %q", typ)
	}
	if err != nil {
		return e, fmt.Errorf("decode %s: %w", typ, err)
	}
	return e, nil
}

// StreamID is the event-store stream of an order.
func StreamID(orderID string) string { return "order-" + orderID }

// IDOfStream is the order of a stream; ok is false for other streams.
func IDOfStream(stream string) (string, bool) { return strings.CutPrefix(stream, "order-") }
