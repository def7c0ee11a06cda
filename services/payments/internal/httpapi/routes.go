// Package httpapi is payments' HTTP interface (see CONTRACT.md).
package httpapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/services/payments/internal/payment"
)

// Store lists payments.
type Store interface {
	List(ctx context.Context, orderID string) ([]payment.Payment, error)
}

// Routes registers every payments endpoint.
func Routes(e *echo.Echo, store Store) {
	e.GET("/payments", func(c echo.Context) error {
		id := c.QueryParam("order_id")
		if id == "" || len(id) > 64 {
			return httpserver.Invalid(map[string]string{"order_id": "required, at most 64 characters"})
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
}
