package saga_test

import (
	"testing"

	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/inventory/internal/saga"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// Every type the producers' contracts list has a route here, handled or
// deliberately ignored, and no route is for a type nobody writes.
func TestRoutesCoverTheContracts(t *testing.T) {
	h, err := saga.New(nil, observe.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Routes().Covers(orderevents.Types, paymentevents.Types); err != nil {
		t.Fatal(err)
	}
}
