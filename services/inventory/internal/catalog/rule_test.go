package catalog_test

import (
	"errors"
	"testing"

	"github.com/example/sagasuite/services/inventory/internal/catalog"
)

func TestCanReserveAllOrNothing(t *testing.T) {
	avail := map[string]int64{"A": 3, "B": 0}
	for name, tc := range map[string]struct {
		items []catalog.Item
		ok    bool
	}{
		"enough":         {[]catalog.Item{{SKU: "A", Quantity: 3}}, true},
		"one short":      {[]catalog.Item{{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 1}}, false},
		"too many":       {[]catalog.Item{{SKU: "A", Quantity: 4}}, false},
		"not catalogued": {[]catalog.Item{{SKU: "A", Quantity: 1}, {SKU: "Z", Quantity: 1}}, false},
	} {
		err := catalog.CanReserve(avail, tc.items)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, catalog.ErrOutOfStock)) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
