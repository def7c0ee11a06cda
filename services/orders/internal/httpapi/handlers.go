package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/order"
)

// Orders is the use cases the handlers call.
type Orders interface {
	Place(ctx context.Context, req app.PlaceRequest) (order.Order, error)
	Get(ctx context.Context, id string) (order.Order, error)
	Events(ctx context.Context, id string) ([]eventstore.Event, error)
}

type handlers struct{ orders Orders }

type placeRequest struct {
	CustomerID string       `json:"customer_id"`
	Items      []order.Line `json:"items"`
	Payment    struct {
		CardNumber string `json:"card_number"`
	} `json:"payment"`
}

func (h *handlers) place(c echo.Context) error {
	var req placeRequest
	if err := httpserver.Bind(c, &req); err != nil {
		return err
	}
	key := c.Request().Header.Get("Idempotency-Key")
	if len(key) > 128 {
		return httpserver.Invalid(map[string]string{"Idempotency-Key": "1 to 128 characters"})
	}
	o, err := h.orders.Place(c.Request().Context(), app.PlaceRequest{
		CustomerID: req.CustomerID, Lines: req.Items, CardNumber: req.Payment.CardNumber, IdempotencyKey: key})
	if err != nil {
		return placeError(c, err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/orders/"+o.ID)
	return c.JSON(http.StatusAccepted, view(o))
}

// placeError maps the use case's errors to the contract's answers.
func placeError(c echo.Context, err error) error {
	var invalid *app.InvalidError
	var unknown *app.UnknownSKUError
	switch {
	case errors.As(err, &invalid):
		return httpserver.Invalid(invalid.Fields)
	case errors.As(err, &unknown):
		fields := map[string]string{}
		for _, sku := range unknown.SKUs {
			fields[sku] = "not in the catalogue"
		}
		return &httpserver.Error{Status: http.StatusUnprocessableEntity, Code: "unknown_sku", Message: unknown.Error(), Fields: fields}
	case errors.Is(err, app.ErrKeyReused):
		return httpserver.NewError(http.StatusConflict, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
	case errors.Is(err, app.ErrInventoryUnavailable):
		c.Response().Header().Set(echo.HeaderRetryAfter, "1")
		return httpserver.NewError(http.StatusServiceUnavailable, "inventory_unavailable", "inventory cannot quote prices right now; retry later")
	case errors.Is(err, app.ErrPaymentUnavailable):
		c.Response().Header().Set(echo.HeaderRetryAfter, "1")
		return httpserver.NewError(http.StatusServiceUnavailable, "payment_unavailable", "the payment provider cannot take the card right now; retry later")
	}
	return err
}

func (h *handlers) get(c echo.Context) error {
	o, err := h.orders.Get(c.Request().Context(), c.Param("id"))
	if errors.Is(err, order.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view(o))
}

type eventView struct {
	Type       string            `json:"type"`
	Version    int64             `json:"version"`
	OccurredAt time.Time         `json:"occurred_at"`
	Data       json.RawMessage   `json:"data"`
	Metadata   map[string]string `json:"metadata"`
}

func (h *handlers) events(c echo.Context) error {
	events, err := h.orders.Events(c.Request().Context(), c.Param("id"))
	if errors.Is(err, order.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		return err
	}
	out := make([]eventView, len(events))
	for i, e := range events {
		out[i] = eventView{Type: e.Type, Version: e.Version, OccurredAt: e.OccurredAt, Data: e.Data, Metadata: e.Metadata}
	}
	return c.JSON(http.StatusOK, out)
}

func notFound() error {
	return httpserver.NewError(http.StatusNotFound, "order_not_found", "no order with that id")
}

// view makes sure items is a list, never null.
func view(o order.Order) order.Order {
	if o.Items == nil {
		o.Items = []order.Item{}
	}
	return o
}
