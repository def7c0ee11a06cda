package orderevents_test

import (
	"testing"

	"github.com/example/sagasuite/services/orders/orderevents"
)

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

func TestRefNeedsTheOrder(t *testing.T) {
	if (orderevents.Ref{OrderID: "o"}).Validate() != nil || (orderevents.Ref{}).Validate() == nil {
		t.Fatal("Ref validates an order id, and only that")
	}
}
