package catalog

import "fmt"

// CanReserve is the reservation rule: an order is reserved whole or not at
// all, so every item must be in the catalogue with at least its quantity
// available. available is the stock of the products the caller locked
// (unknown SKUs absent). It returns ErrOutOfStock, wrapped with the first
// item that fails.
func CanReserve(available map[string]int64, items []Item) error {
	for _, it := range items {
		have, ok := available[it.SKU]
		if !ok {
			return fmt.Errorf("%s is not in the catalogue: %w", it.SKU, ErrOutOfStock)
		}
		if have < it.Quantity {
			return fmt.Errorf("%s: %d available, %d wanted: %w", it.SKU, have, it.Quantity, ErrOutOfStock)
		}
	}
	return nil
}
