package saga_test

import (
	"testing"

	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/internal/saga"
)

// Every type the producers' contracts list has a route here, handled or
// deliberately ignored, and no route is for a type nobody writes.
func TestRoutesCoverTheContracts(t *testing.T) {
	h, err := saga.New(nil, nil, observe.Discard(), saga.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Routes().Covers(orderevents.Types, inventoryevents.Types); err != nil {
		t.Fatal(err)
	}
}
