package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
)

// Store is what the handlers read and change.
type Store interface {
	Products(ctx context.Context, skus []string) ([]catalog.Product, error)
	Product(ctx context.Context, sku string) (catalog.Product, error)
	Reservations(ctx context.Context, orderID string) ([]catalog.Reservation, error)
	SetAvailable(ctx context.Context, sku string, available int64) (catalog.Product, error)
}

type handlers struct{ store Store }

// listProducts answers the catalogue; ?sku=A&sku=B narrows it to those SKUs
// (the quote orders asks for), leaving unknown ones out.
func (h *handlers) listProducts(c echo.Context) error {
	skus := c.QueryParams()["sku"]
	if len(skus) > 100 {
		return httpserver.Invalid(map[string]string{"sku": "at most 100 SKUs per request"})
	}
	for _, sku := range skus {
		if !httpserver.Text(sku, 64) {
			return httpserver.Invalid(map[string]string{"sku": "each 1 to 64 characters without control characters"})
		}
	}
	ps, err := h.store.Products(c.Request().Context(), skus)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []catalog.Product{}
	}
	return c.JSON(http.StatusOK, ps)
}

func (h *handlers) getProduct(c echo.Context) error {
	sku := c.Param("sku")
	if !httpserver.Text(sku, 64) {
		return productNotFound() // not a SKU at all
	}
	p, err := h.store.Product(c.Request().Context(), sku)
	if errors.Is(err, catalog.ErrProductNotFound) {
		return productNotFound()
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (h *handlers) listReservations(c echo.Context) error {
	id := c.QueryParam("order_id")
	if !httpserver.Text(id, 64) {
		return httpserver.Invalid(map[string]string{"order_id": "required, 1 to 64 characters without control characters"})
	}
	rs, err := h.store.Reservations(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []catalog.Reservation{}
	}
	return c.JSON(http.StatusOK, rs)
}

type stockRequest struct {
	Available *int64 `json:"available"`
}

func (h *handlers) setStock(c echo.Context) error {
	var req stockRequest
	if err := httpserver.Bind(c, &req); err != nil {
		return err
	}
	if req.Available == nil || *req.Available < 0 || *req.Available > 1_000_000_000 {
		return httpserver.Invalid(map[string]string{"available": "required, 0..1000000000"})
	}
	sku := c.Param("sku")
	if !httpserver.Text(sku, 64) {
		return productNotFound()
	}
	p, err := h.store.SetAvailable(c.Request().Context(), sku, *req.Available)
	if errors.Is(err, catalog.ErrProductNotFound) {
		return productNotFound()
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func productNotFound() error {
	return httpserver.NewError(http.StatusNotFound, "product_not_found", "no product with that SKU")
}
