// Package httpapi is orders' HTTP interface (see CONTRACT.md and
// docs/api.md for read-your-writes, time travel and notes).
package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/httpserver"
)

// Routes registers every orders endpoint.
func Routes(e *echo.Echo, orders Orders, projections Projections, adminToken string) {
	h := &handlers{orders: orders}
	e.POST("/orders", h.place)
	e.GET("/orders", h.list)
	e.GET("/orders/:id", h.get)
	e.GET("/orders/:id/events", h.events)
	e.POST("/orders/:id/notes", h.addNote)

	a := &admin{projections: projections}
	g := e.Group("/admin", httpserver.RequireToken(adminToken))
	g.GET("/projections", a.status)
	g.POST("/projections/:name/rebuild", a.rebuild)
}
