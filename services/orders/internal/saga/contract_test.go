package saga_test

import (
	"testing"

	"github.com/example/sagasuite/services/inventory/inventoryevents"
	"github.com/example/sagasuite/services/orders/internal/saga"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// Every type the producers' contracts list has a route here, handled or
// deliberately ignored, and no route is for a type nobody writes.
func TestRoutesCoverTheContracts(t *testing.T) {
	if err := saga.New(nil, nil).Routes().Covers(inventoryevents.Types, paymentevents.Types); err != nil {
		t.Fatal(err)
	}
}
