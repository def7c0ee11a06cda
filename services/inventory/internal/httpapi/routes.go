// Package httpapi is inventory's HTTP interface (see CONTRACT.md).
package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/httpserver"
)

// Routes registers every inventory endpoint.
func Routes(e *echo.Echo, store Store, adminToken string) {
	h := &handlers{store: store}
	e.GET("/products", h.listProducts)
	e.GET("/products/:sku", h.getProduct)
	e.GET("/reservations", h.listReservations)

	admin := e.Group("/admin", httpserver.RequireToken(adminToken))
	admin.PUT("/stock/:sku", h.setStock)
}
