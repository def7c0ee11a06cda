package orders_test

import (
	"testing"

	"github.com/example/sagasuite/platform/kafkatest"
	"github.com/example/sagasuite/services/orders/orderevents"
)

// The contract orders publishes (orderevents, a module of its own that
// consumers require): the golden payloads in orderevents/testdata, the type
// table in docs/events.md and the channel in api/asyncapi.yaml must agree.
// It runs here, in the producer's module, so that orderevents needs nothing
// but the standard library.
func TestContract(t *testing.T) {
	finished := orderevents.OrderFinished{OrderID: "0193a1b2-0000-7000-8000-000000000001", Reason: "card_declined", TotalCents: 2500}
	kafkatest.CheckContract(t, "../../docs/events.md", "../../api/asyncapi.yaml", "orderevents/testdata", orderevents.Topic, map[string]any{
		orderevents.Placed: orderevents.OrderPlaced{OrderID: "0193a1b2-0000-7000-8000-000000000001", CustomerID: "c-42",
			Items:      []orderevents.Item{{SKU: "SKU-001", Quantity: 2, UnitPriceCents: 1250}},
			TotalCents: 2500, Currency: "EUR",
			Payment: orderevents.Payment{Token: "enc_v3.k1.c2VhbGVk", CardLast4: "4242"}},
		orderevents.Confirmed: orderevents.OrderFinished{OrderID: finished.OrderID, TotalCents: 2500},
		orderevents.Rejected:  orderevents.OrderFinished{OrderID: finished.OrderID, Reason: "out_of_stock", TotalCents: 2500},
		orderevents.Cancelled: finished,
	})
}
