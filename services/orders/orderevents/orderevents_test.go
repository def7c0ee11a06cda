package orderevents_test

import (
	"testing"

	"github.com/example/sagasuite/platform/kafkatest"
	"github.com/example/sagasuite/services/orders/orderevents"
)

func TestContract(t *testing.T) {
	finished := orderevents.OrderFinished{OrderID: "0193a1b2-0000-7000-8000-000000000001", Reason: "card_declined", TotalCents: 2500}
	kafkatest.CheckContract(t, "../../../docs/events.md", "../../../api/asyncapi.yaml", orderevents.Topic, map[string]any{
		orderevents.Placed: orderevents.OrderPlaced{OrderID: "0193a1b2-0000-7000-8000-000000000001", CustomerID: "c-42",
			Items:      []orderevents.Item{{SKU: "SKU-001", Quantity: 2, UnitPriceCents: 1250}},
			TotalCents: 2500, Currency: "EUR",
			Payment: orderevents.Payment{Token: "enc_v2.k1.c2VhbGVk", CardLast4: "4242"}},
		orderevents.Confirmed: orderevents.OrderFinished{OrderID: finished.OrderID, TotalCents: 2500},
		orderevents.Rejected:  orderevents.OrderFinished{OrderID: finished.OrderID, Reason: "out_of_stock", TotalCents: 2500},
		orderevents.Cancelled: finished,
	})
}

func TestValidate(t *testing.T) {
	ok := orderevents.OrderPlaced{OrderID: "o", Items: []orderevents.Item{{SKU: "s", Quantity: 1}}, TotalCents: 1,
		Payment: orderevents.Payment{Token: "t", CardLast4: "4242"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]orderevents.OrderPlaced{
		"no order id": {Items: ok.Items, TotalCents: 1, Payment: ok.Payment},
		"no items":    {OrderID: "o", TotalCents: 1, Payment: ok.Payment},
		"bad item":    {OrderID: "o", Items: []orderevents.Item{{SKU: "s"}}, TotalCents: 1, Payment: ok.Payment},
		"no total":    {OrderID: "o", Items: ok.Items, Payment: ok.Payment},
		"same sku twice": {OrderID: "o", Items: []orderevents.Item{{SKU: "s", Quantity: 1}, {SKU: "s", Quantity: 2}}, TotalCents: 1,
			Payment: ok.Payment},
		"no token": {OrderID: "o", Items: ok.Items, TotalCents: 1, Payment: orderevents.Payment{CardLast4: "4242"}},
	} {
		if p.Validate() == nil {
			t.Errorf("%s: valid", name)
		}
	}
}
