// Package httpapi is inventory's HTTP interface (api/openapi.yaml describes every route).
package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/election"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
)

// Ops are the operator's switches and views inventory has.
type Ops struct {
	Faults      *faults.Injector
	Consumption faults.Consumption
	Expiry      *election.Singleton // the reservation-expiry job's election
}

// Routes registers every route inventory serves beside /healthz, /readyz
// and /metrics (the server's own): the API on e, operations on admin
// (behind ADMIN_TOKEN).
func Routes(e *echo.Echo, admin *echo.Group, store Store, ops Ops) {
	e.Use(ops.Faults.Middleware) // injected latency and errors, on the API only
	h := &handlers{store: store}
	e.GET("/products", h.listProducts)
	e.GET("/products/:sku", h.getProduct)
	e.GET("/reservations", h.listReservations)

	admin.PUT("/stock/:sku", h.setStock)
	admin.GET("/leader", httpserver.JSON(ops.Expiry.Status)) // who runs the expiry job
	ops.Faults.Routes(admin)                                 // GET, PUT /admin/faults
	ops.Consumption.Routes(admin)                            // GET, PUT /admin/consumption
	httpserver.PprofRoutes(admin)                            // GET /admin/debug/pprof/…
}
