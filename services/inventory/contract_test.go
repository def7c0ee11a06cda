package inventory_test

import (
	"testing"

	"github.com/example/sagasuite/platform/kafkatest"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
)

// The contract inventory publishes (inventoryevents, a module of its own that
// consumers require): the golden payloads in inventoryevents/testdata, the type
// table in docs/events.md and the channel in api/asyncapi.yaml must agree.
// It runs here, in the producer's module, so that inventoryevents needs nothing
// but the standard library.
func TestContract(t *testing.T) {
	const id = "0193a1b2-0000-7000-8000-000000000001"
	kafkatest.CheckContract(t, "../../docs/events.md", "../../api/asyncapi.yaml", "inventoryevents/testdata", inventoryevents.Topic, map[string]any{
		inventoryevents.Reserved: inventoryevents.StockReserved{OrderID: id, Items: []inventoryevents.Item{{SKU: "SKU-001", Quantity: 2}}},
		inventoryevents.Rejected: inventoryevents.StockRejected{OrderID: id, Reason: inventoryevents.ReasonOutOfStock,
			Detail: "SKU-001: 2 wanted, 1 available"},
		inventoryevents.Committed: inventoryevents.StockCommitted{OrderID: id},
		inventoryevents.Released:  inventoryevents.StockReleased{OrderID: id, Reason: "orders.cancelled"},
		inventoryevents.Expired:   inventoryevents.StockReleased{OrderID: id, Reason: inventoryevents.ReasonReservationExpired},
	})
}
