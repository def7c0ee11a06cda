// Package catalog is inventory's domain: products with stock that moves
// between available, reserved (held for an order whose payment is not
// settled) and committed (sold), and reservations that record what one
// order holds.
//
// Stock is conserved: available + reserved + committed only changes when
// an operator restocks. Reserving takes all of an order's items or none.
package catalog

import (
	"errors"
	"fmt"
)

// Reservation statuses.
const (
	Reserved  = "RESERVED"
	Committed = "COMMITTED"
	Released  = "RELEASED"
)

// Product is one SKU and its stock.
type Product struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Available  int64  `json:"available"`
	Reserved   int64  `json:"reserved"`
	Committed  int64  `json:"-"`
}

// Item is a quantity of one SKU.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// Reservation is what one order holds of one SKU.
type Reservation struct {
	OrderID  string `json:"order_id"`
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
	Status   string `json:"status"`
}

// Errors callers match.
var (
	ErrProductNotFound = errors.New("product not found")
	ErrOutOfStock      = errors.New("out of stock")
)

// Seed is the catalogue created on first start: SKU-0001 … SKU-0100, prices
// spread over 100..10000 cents, deterministic so runs are comparable.
func Seed(stock int64) []Product {
	out := make([]Product, 100)
	for i := range out {
		n := i + 1
		out[i] = Product{
			SKU:        fmt.Sprintf("SKU-%04d", n),
			Name:       fmt.Sprintf("Sample product %d", n),
			PriceCents: 100 + int64((n*7919)%9901),
			Available:  stock,
		}
	}
	return out
}
