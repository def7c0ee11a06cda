package paymentevents_test

import (
	"testing"

	"github.com/example/sagasuite/services/payments/paymentevents"
)

func TestRefNeedsTheOrder(t *testing.T) {
	if (paymentevents.Ref{OrderID: "o"}).Validate() != nil || (paymentevents.Ref{}).Validate() == nil {
		t.Fatal("Ref validates an order id, and only that")
	}
}
