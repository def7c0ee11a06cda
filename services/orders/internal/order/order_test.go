package order_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/sagasuite/services/orders/internal/order"
)

func placed(t *testing.T) *order.Order {
	t.Helper()
	var o order.Order
	e := order.Place("o-1", "c-1", []order.Item{{SKU: "A", Quantity: 2, UnitPriceCents: 150}, {SKU: "B", Quantity: 1, UnitPriceCents: 100}}, "4242", time.Unix(100, 0))
	if err := o.Apply(e); err != nil {
		t.Fatal(err)
	}
	return &o
}

func TestPlaceTotalsAndStartsPending(t *testing.T) {
	o := placed(t)
	if o.Status != order.Pending || o.TotalCents != 400 || o.Version != 1 || o.ID != "o-1" {
		t.Fatalf("%+v", o)
	}
}

func TestExactlyOneTerminalStatus(t *testing.T) {
	now := time.Unix(200, 0)
	decisions := map[order.Status]func(o *order.Order) (order.Event, error){
		order.Confirmed: func(o *order.Order) (order.Event, error) { return o.Confirm(now) },
		order.Rejected:  func(o *order.Order) (order.Event, error) { return o.Reject(order.ReasonOutOfStock, now) },
		order.Cancelled: func(o *order.Order) (order.Event, error) { return o.Cancel(order.ReasonSagaTimeout, now) },
	}
	for status, decide := range decisions {
		o := placed(t)
		e, err := decide(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Apply(e); err != nil || o.Status != status || o.Version != 2 {
			t.Fatalf("%s: %+v %v", status, o, err)
		}
		for other, again := range decisions {
			if _, err := again(o); !errors.Is(err, order.ErrFinished) {
				t.Errorf("%s then %s: %v, want ErrFinished", status, other, err)
			}
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	var rebuilt order.Order
	o := placed(t)
	c, _ := o.Cancel(order.ReasonCardDeclined, time.Unix(300, 0))
	_ = o.Apply(c)
	for _, e := range []order.Event{order.Place("o-1", "c-1", o.Items, "4242", time.Unix(100, 0)), c} {
		data, schema, err := order.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		d, err := order.Decode(e.Type, schema, e.At, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := rebuilt.Apply(d); err != nil {
			t.Fatal(err)
		}
	}
	if rebuilt.Status != order.Cancelled || rebuilt.Reason != order.ReasonCardDeclined || rebuilt.TotalCents != 400 || rebuilt.Version != 2 {
		t.Fatalf("rebuilt %+v", rebuilt)
	}
	if _, err := order.Decode("Nope", 1, time.Now(), []byte(`{}`)); err == nil {
		t.Fatal("unknown type decoded")
	}
}

// OrderPlaced as the first version of the code stored it (schema 1, no
// currency) reads as the current shape.
func TestPlacedSchema1IsUpcast(t *testing.T) {
	v1 := []byte(`{"order_id":"o-1","customer_id":"c","items":[{"sku":"A","quantity":1,"unit_price_cents":5}],"total_cents":5,"card_last4":"4242"}`)
	e, err := order.Decode(order.TypePlaced, 1, time.Unix(1, 0), v1)
	if err != nil {
		t.Fatal(err)
	}
	var o order.Order
	if err := o.Apply(e); err != nil {
		t.Fatal(err)
	}
	if o.Currency != "USD" || o.TotalCents != 5 || o.ID != "o-1" {
		t.Fatalf("upcast order %+v", o)
	}
	if _, err := order.Decode(order.TypePlaced, 3, time.Unix(1, 0), v1); err == nil {
		t.Fatal("a schema newer than the build was accepted")
	}
	e2, _ := order.Decode(order.TypePlaced, 2, time.Unix(1, 0), []byte(`{"order_id":"o","currency":"EUR"}`))
	if e2.Data.(order.Placed).Currency != "EUR" {
		t.Fatal("current schema was changed by the upcaster")
	}
}

func TestNotesCountInAnyStatus(t *testing.T) {
	o := placed(t)
	_ = o.Apply(o.AddNote("called the customer", "agent-7", time.Unix(150, 0)))
	c, _ := o.Confirm(time.Unix(200, 0))
	_ = o.Apply(c)
	_ = o.Apply(o.AddNote("refund asked", "agent-7", time.Unix(250, 0)))
	if o.Notes != 2 || o.Version != 4 || o.Status != order.Confirmed || !o.UpdatedAt.Equal(time.Unix(250, 0)) {
		t.Fatalf("%+v", o)
	}
}

func TestValidatePlace(t *testing.T) {
	ok := []order.Line{{SKU: "SKU-0001", Quantity: 1}}
	many := make([]order.Line, 51)
	for i := range many {
		many[i] = order.Line{SKU: strings.Repeat("x", i+1), Quantity: 1}
	}
	tests := []struct {
		name     string
		customer string
		lines    []order.Line
		card     string
		field    string // the field reported; "" means valid
	}{
		{"valid", "c-42", ok, "4242424242424242", ""},
		{"valid 12 digit card", "A_b-9", ok, "424242424242", ""},
		{"empty customer", "", ok, "4242424242424242", "customer_id"},
		{"customer bad chars", "c 42", ok, "4242424242424242", "customer_id"},
		{"customer too long", strings.Repeat("c", 65), ok, "4242424242424242", "customer_id"},
		{"no items", "c", nil, "4242424242424242", "items"},
		{"51 items", "c", many, "4242424242424242", "items"},
		{"duplicate sku", "c", []order.Line{{SKU: "A", Quantity: 1}, {SKU: "A", Quantity: 2}}, "4242424242424242", "items[1].sku"},
		{"zero quantity", "c", []order.Line{{SKU: "A", Quantity: 0}}, "4242424242424242", "items[0].quantity"},
		{"quantity 1001", "c", []order.Line{{SKU: "A", Quantity: 1001}}, "4242424242424242", "items[0].quantity"},
		{"empty sku", "c", []order.Line{{SKU: "", Quantity: 1}}, "4242424242424242", "items[0].sku"},
		{"card 11 digits", "c", ok, "42424242424", "payment.card_number"},
		{"card 20 digits", "c", ok, "42424242424242424242", "payment.card_number"},
		{"card letters", "c", ok, "4242x24242424242", "payment.card_number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := order.ValidatePlace(tt.customer, tt.lines, tt.card)
			if tt.field == "" {
				if len(bad) != 0 {
					t.Fatalf("valid input rejected: %v", bad)
				}
				return
			}
			if _, ok := bad[tt.field]; !ok {
				t.Fatalf("want a problem with %s, got %v", tt.field, bad)
			}
			for _, msg := range bad {
				if strings.Contains(msg, tt.card) && tt.card != "" {
					t.Fatalf("message echoes the card number: %q", msg)
				}
			}
		})
	}
}

// TerminalTypes lists exactly the types StatusAfter knows: a waiting
// client woken by any other would read in vain, and one not woken by a
// terminal type would wait until its timeout.
func TestTerminalTypesAreTheTypesThatEndAnOrder(t *testing.T) {
	for _, typ := range []string{order.TypePlaced, order.TypeConfirmed, order.TypeRejected, order.TypeCancelled, order.TypeNoteAdded} {
		_, ends := order.StatusAfter(typ)
		if ends != slices.Contains(order.TerminalTypes, typ) {
			t.Errorf("%s: ends the order %v, in TerminalTypes %v", typ, ends, !ends)
		}
	}
}
