// Package httpapi is orders' HTTP interface (api/openapi.yaml describes
// every route; docs/api.md read-your-writes, time travel and notes).
package httpapi

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/election"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
)

// Ops are the operator's switches and views orders has.
type Ops struct {
	Projections Projections // the read models, to inspect and rebuild
	Faults      *faults.Injector
	Consumption faults.Consumption
	Watchdog    *election.Singleton // the saga watchdog's election
}

// Routes registers every route orders serves beside /healthz, /readyz and
// /metrics (the server's own): the API on e, operations on admin (behind
// ADMIN_TOKEN). draining ends long polls (GET /orders/{id}?wait=) when
// the server shuts down.
func Routes(e *echo.Echo, admin *echo.Group, orders Orders, ops Ops, draining context.Context) {
	e.Use(ops.Faults.Middleware) // injected latency and errors, on the API only
	h := &handlers{orders: orders, draining: draining}
	e.POST("/orders", h.place)
	e.GET("/orders", h.list)
	e.GET("/orders/:id", h.get)
	e.GET("/orders/:id/events", h.events)
	e.POST("/orders/:id/notes", h.addNote)

	a := &projectionAdmin{projections: ops.Projections}
	admin.GET("/projections", a.status)
	admin.POST("/projections/:name/rebuild", a.rebuild)
	if ops.Watchdog != nil {
		admin.GET("/leader", httpserver.JSON(ops.Watchdog.Status)) // who runs the watchdog
	}
	ops.Faults.Routes(admin)      // GET, PUT /admin/faults
	ops.Consumption.Routes(admin) // GET, PUT /admin/consumption
	httpserver.PprofRoutes(admin) // GET /admin/debug/pprof/…
}
