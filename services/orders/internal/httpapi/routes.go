// Package httpapi is orders' HTTP interface (see CONTRACT.md and
// docs/api.md for read-your-writes, time travel and notes).
package httpapi

import (
	"context"

	"github.com/labstack/echo/v4"
)

// Routes registers every orders endpoint; admin is the token-guarded group.
// draining ends long polls (GET /orders/{id}?wait=) when the server shuts down.
func Routes(e *echo.Echo, admin *echo.Group, orders Orders, projections Projections, draining context.Context) {
	h := &handlers{orders: orders, draining: draining}
	e.POST("/orders", h.place)
	e.GET("/orders", h.list)
	e.GET("/orders/:id", h.get)
	e.GET("/orders/:id/events", h.events)
	e.POST("/orders/:id/notes", h.addNote)

	a := &projectionAdmin{projections: projections}
	admin.GET("/projections", a.status)
	admin.POST("/projections/:name/rebuild", a.rebuild)
}
