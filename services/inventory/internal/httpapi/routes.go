// Package httpapi is inventory's HTTP interface (see CONTRACT.md).
package httpapi

import (
	"github.com/labstack/echo/v4"
)

// Routes registers every inventory endpoint; admin is the token-guarded group.
func Routes(e *echo.Echo, admin *echo.Group, store Store) {
	h := &handlers{store: store}
	e.GET("/products", h.listProducts)
	e.GET("/products/:sku", h.getProduct)
	e.GET("/reservations", h.listReservations)
	admin.PUT("/stock/:sku", h.setStock)
}
