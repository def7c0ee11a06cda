package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/order"
)

// Orders is the use cases the handlers call.
type Orders interface {
	Place(ctx context.Context, req app.PlaceRequest) (app.Result, error)
	AddNote(ctx context.Context, req app.NoteRequest) (app.Result, error)
	Get(ctx context.Context, id string, minPosition int64) (order.Order, error)
	Await(ctx context.Context, id string, stop <-chan struct{}) (order.Order, error)
	List(ctx context.Context, f app.Filter, minPosition int64) ([]order.Order, string, error)
	AsOf(ctx context.Context, id string, t time.Time) (order.Order, error)
	Events(ctx context.Context, id string) ([]eventstore.Event, error)
}

// HeaderPosition carries the global position of a command's last event.
// Queries accept it back as ?min_position= to read their own write.
const HeaderPosition = "Event-Position"

type handlers struct {
	orders   Orders
	draining context.Context
}

// MaxWait caps GET /orders/{id}?wait= (api/openapi.yaml).
const MaxWait = 30 * time.Second

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
	if key != "" && !httpserver.Text(key, 128) {
		return httpserver.Invalid(map[string]string{"Idempotency-Key": "1 to 128 characters of text (UTF-8, no control characters)"})
	}
	res, err := h.orders.Place(c.Request().Context(), app.PlaceRequest{
		CustomerID: req.CustomerID, Lines: req.Items, CardNumber: req.Payment.CardNumber, IdempotencyKey: key,
		RequestID: requestID(c)})
	if err != nil {
		return commandError(c, err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/orders/"+res.Order.ID)
	return written(c, http.StatusAccepted, res)
}

type noteRequest struct {
	Text   string `json:"text"`
	Author string `json:"author"`
}

func (h *handlers) addNote(c echo.Context) error {
	var req noteRequest
	if err := httpserver.Bind(c, &req); err != nil {
		return err
	}
	id, err := orderID(c)
	if err != nil {
		return err
	}
	ifVersion, err := ifMatch(c)
	if err != nil {
		return err
	}
	res, err := h.orders.AddNote(c.Request().Context(), app.NoteRequest{OrderID: id, Text: req.Text, Author: req.Author,
		IfVersion: ifVersion, RequestID: requestID(c)})
	if err != nil {
		return commandError(c, err)
	}
	return written(c, http.StatusCreated, res)
}

// written answers a command with the order, its version as the ETag and
// the position for read-your-writes.
func written(c echo.Context, status int, res app.Result) error {
	h := c.Response().Header()
	h.Set("ETag", strconv.Quote(strconv.FormatInt(res.Order.Version, 10)))
	if res.Position > 0 {
		h.Set(HeaderPosition, strconv.FormatInt(res.Position, 10))
	}
	return c.JSON(status, view(res.Order))
}

// ifMatch reads If-Match: "<version>" (quotes optional); 0 when absent.
func ifMatch(c echo.Context) (int64, error) {
	v := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
	if err != nil || n <= 0 {
		return 0, httpserver.Invalid(map[string]string{"If-Match": `the order's version, e.g. "3"`})
	}
	return n, nil
}

func requestID(c echo.Context) string {
	if id := c.Request().Header.Get(echo.HeaderXRequestID); httpserver.Text(id, 128) {
		return id
	}
	return "" // the trace id in the metadata identifies the request
}

// commandError maps the use cases' errors to the contract's answers.
func commandError(c echo.Context, err error) error {
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
	case errors.Is(err, order.ErrNotFound):
		return notFound()
	case errors.Is(err, app.ErrVersionConflict):
		return httpserver.NewError(http.StatusConflict, "version_conflict", "the order changed meanwhile; read it again and retry")
	case errors.Is(err, app.ErrKeyReused):
		return httpserver.NewError(http.StatusConflict, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
	case errors.Is(err, app.ErrInventoryUnavailable):
		c.Response().Header().Set(echo.HeaderRetryAfter, "1")
		return httpserver.NewError(http.StatusServiceUnavailable, "inventory_unavailable", "inventory cannot quote prices right now; retry later")
	case errors.Is(err, app.ErrOverloaded):
		c.Response().Header().Set(echo.HeaderRetryAfter, "1")
		return httpserver.NewError(http.StatusServiceUnavailable, "overloaded", "more orders are in flight than the suite can finish in time; retry later")
	case errors.Is(err, app.ErrBudgetSpent):
		c.Response().Header().Set(echo.HeaderRetryAfter, "1")
		return httpserver.NewError(http.StatusServiceUnavailable, "overloaded", "the order could not be placed in time; retry later")
	case errors.Is(err, app.ErrPaymentUnavailable):
		c.Response().Header().Set(echo.HeaderRetryAfter, "1")
		return httpserver.NewError(http.StatusServiceUnavailable, "payment_unavailable", "the payment provider cannot take the card right now; retry later")
	}
	return err
}

// orderID is the {id} of the path; an id that is not text (NUL, invalid
// UTF-8, too long) names no order: 404, as an unknown one.
func orderID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !httpserver.Text(id, 64) {
		return "", notFound()
	}
	return id, nil
}

func (h *handlers) get(c echo.Context) error {
	id, err := orderID(c)
	if err != nil {
		return err
	}
	var o order.Order
	if asOf := c.QueryParam("as_of"); asOf != "" {
		t, perr := time.Parse(time.RFC3339Nano, asOf)
		if perr != nil {
			return httpserver.Invalid(map[string]string{"as_of": "an RFC 3339 time, e.g. 2026-11-25T10:00:00Z"})
		}
		o, err = h.orders.AsOf(c.Request().Context(), id, t)
	} else if w := c.QueryParam("wait"); w != "" {
		wait, perr := time.ParseDuration(w)
		if perr != nil || wait < 0 || wait > MaxWait {
			return httpserver.Invalid(map[string]string{"wait": "a Go duration from 0s to 30s, e.g. 10s"})
		}
		o, err = h.await(c.Request().Context(), id, wait)
	} else {
		minPos, perr := minPosition(c)
		if perr != nil {
			return perr
		}
		o, err = h.orders.Get(c.Request().Context(), id, minPos)
	}
	if err != nil {
		return queryError(c, err)
	}
	c.Response().Header().Set("ETag", strconv.Quote(strconv.FormatInt(o.Version, 10)))
	return c.JSON(http.StatusOK, view(o))
}

// await follows an order to its outcome for at most wait; a server that
// starts draining answers at once with the order as it stands.
func (h *handlers) await(ctx context.Context, id string, wait time.Duration) (order.Order, error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if h.draining != nil {
		defer context.AfterFunc(h.draining, cancel)()
	}
	return h.orders.Await(ctx, id, wctx.Done())
}

var statuses = map[string]bool{"PENDING": true, "CONFIRMED": true, "REJECTED": true, "CANCELLED": true}

type page struct {
	Orders     []order.Order `json:"orders"`
	NextCursor string        `json:"next_cursor"`
}

func (h *handlers) list(c echo.Context) error {
	f := app.Filter{CustomerID: c.QueryParam("customer_id"), Status: order.Status(c.QueryParam("status")), Limit: 20, Cursor: c.QueryParam("cursor")}
	bad := map[string]string{}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			bad["limit"] = "1 to 100"
		}
		f.Limit = n
	}
	if f.Status != "" && !statuses[string(f.Status)] {
		bad["status"] = "one of PENDING, CONFIRMED, REJECTED, CANCELLED"
	}
	if f.CustomerID != "" && !order.ValidCustomerID(f.CustomerID) {
		bad["customer_id"] = "1 to 64 characters of A-Z, a-z, 0-9, _ and -"
	}
	if err := httpserver.Invalid(bad); err != nil {
		return err
	}
	minPos, err := minPosition(c)
	if err != nil {
		return err
	}
	orders, next, err := h.orders.List(c.Request().Context(), f, minPos)
	if errors.Is(err, app.ErrBadCursor) {
		return httpserver.Invalid(map[string]string{"cursor": "not a cursor from a previous page"})
	}
	if err != nil {
		return queryError(c, err)
	}
	p := page{Orders: make([]order.Order, len(orders)), NextCursor: next}
	for i, o := range orders {
		p.Orders[i] = view(o)
	}
	return c.JSON(http.StatusOK, p)
}

func minPosition(c echo.Context) (int64, error) {
	v := c.QueryParam("min_position")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, httpserver.Invalid(map[string]string{"min_position": "the Event-Position header of a command's answer"})
	}
	return n, nil
}

func queryError(c echo.Context, err error) error {
	switch {
	case errors.Is(err, order.ErrNotFound):
		return notFound()
	case errors.Is(err, app.ErrReadModelBehind):
		c.Response().Header().Set(echo.HeaderRetryAfter, "1")
		return httpserver.NewError(http.StatusServiceUnavailable, "read_model_behind", "the read model has not caught up with min_position yet; retry")
	}
	return err
}

type eventView struct {
	Type       string            `json:"type"`
	Version    int64             `json:"version"`
	Position   int64             `json:"position"`
	Schema     int               `json:"schema_version"`
	OccurredAt time.Time         `json:"occurred_at"`
	Data       json.RawMessage   `json:"data"`
	Metadata   map[string]string `json:"metadata"`
}

func (h *handlers) events(c echo.Context) error {
	id, err := orderID(c)
	if err != nil {
		return err
	}
	events, err := h.orders.Events(c.Request().Context(), id)
	if err != nil {
		return queryError(c, err)
	}
	out := make([]eventView, len(events))
	for i, e := range events {
		out[i] = eventView{Type: e.Type, Version: e.Version, Position: e.Position, Schema: e.Schema, OccurredAt: e.OccurredAt, Data: e.Data, Metadata: e.Metadata}
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
