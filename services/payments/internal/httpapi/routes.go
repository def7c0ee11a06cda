// Package httpapi is payments' HTTP interface (api/openapi.yaml describes every route).
package httpapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/services/payments/internal/payment"
)

// Store lists payments.
type Store interface {
	List(ctx context.Context, orderID string) ([]payment.Payment, error)
}

// Ops are the operator's switches payments has.
type Ops struct {
	Faults      *faults.Injector
	Consumption faults.Consumption
}

// Routes registers every route payments serves beside /healthz, /readyz
// and /metrics (the server's own): the API on e, operations on admin
// (behind ADMIN_TOKEN).
func Routes(e *echo.Echo, admin *echo.Group, store Store, ops Ops) {
	e.Use(ops.Faults.Middleware) // injected latency and errors, on the API only
	e.GET("/payments", func(c echo.Context) error {
		id := c.QueryParam("order_id")
		if !httpserver.Text(id, 64) {
			return httpserver.Invalid(map[string]string{"order_id": "required, 1 to 64 characters without control characters"})
		}
		ps, err := store.List(c.Request().Context(), id)
		if err != nil {
			return err
		}
		if ps == nil {
			ps = []payment.Payment{}
		}
		return c.JSON(http.StatusOK, ps)
	})

	ops.Faults.Routes(admin)      // GET, PUT /admin/faults
	ops.Consumption.Routes(admin) // GET, PUT /admin/consumption
	httpserver.PprofRoutes(admin) // GET /admin/debug/pprof/…
}
