// Package httpapi is orders' HTTP interface (see CONTRACT.md).
package httpapi

import (
	"github.com/labstack/echo/v4"
)

// Routes registers every orders endpoint.
func Routes(e *echo.Echo, orders Orders) {
	h := &handlers{orders: orders}
	e.POST("/orders", h.place)
	e.GET("/orders/:id", h.get)
	e.GET("/orders/:id/events", h.events)
}
