// Package announce turns changes of an order into the messages orders
// publishes on orders.events, in the shape of its published contract
// (services/orders/orderevents). The command that changes the order
// writes them to the outbox in the same transaction.
package announce

import (
	"fmt"

	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/orderevents"
)

// Placed announces a new order, with the card sealed to the provider's
// key (only the provider can open it), never the card number.
func Placed(e order.Event, pay orderevents.Payment) (outbox.Message, error) {
	p := e.Data.(order.Placed)
	items := make([]orderevents.Item, len(p.Items))
	for i, it := range p.Items {
		items[i] = orderevents.Item{SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents}
	}
	return message(orderevents.Placed, p.OrderID, orderevents.OrderPlaced{OrderID: p.OrderID, CustomerID: p.CustomerID,
		Items: items, TotalCents: p.TotalCents, Currency: p.Currency, Payment: pay})
}

// Finished announces an order's terminal status.
func Finished(o order.Order) (outbox.Message, error) {
	typ := map[order.Status]string{order.Confirmed: orderevents.Confirmed, order.Rejected: orderevents.Rejected,
		order.Cancelled: orderevents.Cancelled}[o.Status]
	if typ == "" {
		return outbox.Message{}, fmt.Errorf("announce order %s: status %s is not terminal", o.ID, o.Status)
	}
	return message(typ, o.ID, orderevents.OrderFinished{OrderID: o.ID, Reason: o.Reason, TotalCents: o.TotalCents})
}

// events is orders' side of its contract, through the outbox.
var events = outbox.Producer{Topic: orderevents.Topic, Source: orderevents.Source}

func message(typ, orderID string, data any) (outbox.Message, error) {
	return events.Message(typ, orderID, data)
}
