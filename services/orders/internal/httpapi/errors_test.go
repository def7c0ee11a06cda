package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/httpapi"
	"github.com/example/sagasuite/services/orders/internal/order"
)

// failing is httpapi.Orders whose commands all fail with err.
type failing struct{ err error }

func (f failing) Place(context.Context, app.PlaceRequest) (app.Result, error) {
	return app.Result{}, f.err
}
func (f failing) AddNote(context.Context, app.NoteRequest) (app.Result, error) {
	return app.Result{}, f.err
}
func (f failing) Get(context.Context, string, int64) (order.Order, error) {
	return order.Order{}, f.err
}
func (f failing) Await(context.Context, string, <-chan struct{}) (order.Order, error) {
	return order.Order{}, f.err
}
func (f failing) List(context.Context, app.Filter, int64) ([]order.Order, string, error) {
	return nil, "", f.err
}
func (f failing) AsOf(context.Context, string, time.Time) (order.Order, error) {
	return order.Order{}, f.err
}
func (f failing) Events(context.Context, string) ([]eventstore.Event, error) { return nil, f.err }

// Every error of the use cases has its answer of the contract: status,
// error code, and Retry-After where retrying helps. An error the HTTP
// layer does not know is a 500 that says nothing of the cause.
func TestCommandErrorsMapToTheContract(t *testing.T) {
	for _, tt := range []struct {
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{&app.InvalidError{Fields: map[string]string{"customer_id": "bad"}}, http.StatusBadRequest, "validation_failed", false},
		{&app.UnknownSKUError{SKUs: []string{"NOPE"}}, http.StatusUnprocessableEntity, "unknown_sku", false},
		{fmt.Errorf("x: %w", order.ErrNotFound), http.StatusNotFound, "order_not_found", false},
		{fmt.Errorf("x: %w", app.ErrVersionConflict), http.StatusConflict, "version_conflict", false},
		{app.ErrKeyReused, http.StatusConflict, "idempotency_key_reused", false},
		{fmt.Errorf("%w: refused", app.ErrInventoryUnavailable), http.StatusServiceUnavailable, "inventory_unavailable", true},
		{app.ErrOverloaded, http.StatusServiceUnavailable, "overloaded", true},
		{fmt.Errorf("%w: %w", app.ErrBudgetSpent, app.ErrPaymentUnavailable), http.StatusServiceUnavailable, "overloaded", true},
		{fmt.Errorf("%w: down", app.ErrPaymentUnavailable), http.StatusServiceUnavailable, "payment_unavailable", true},
		{errors.New("pq: connection reset by peer"), http.StatusInternalServerError, "internal", false},
	} {
		srv, err := httpserver.New(observe.Discard(), httpserver.Config{})
		if err != nil {
			t.Fatal(err)
		}
		httpapi.Routes(srv.Echo, srv.Echo.Group("/admin"), failing{tt.err}, httpapi.Ops{Faults: &faults.Injector{}}, context.Background())
		for path, body := range map[string]string{"/orders": `{"customer_id":"c","items":[]}`, "/orders/o-1/notes": `{"text":"t","author":"a"}`} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			srv.ServeHTTP(rec, req)
			var body struct {
				Error struct{ Code, Message string }
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tt.status || body.Error.Code != tt.code {
				t.Errorf("%s with %v: %d %s, want %d %s", path, tt.err, rec.Code, body.Error.Code, tt.status, tt.code)
			}
			if got := rec.Header().Get("Retry-After") != ""; got != tt.retryAfter {
				t.Errorf("%s with %v: Retry-After %v, want %v", path, tt.err, got, tt.retryAfter)
			}
			if strings.Contains(rec.Body.String(), "connection reset") {
				t.Errorf("%s: the answer leaks the cause: %s", path, rec.Body)
			}
		}
	}
}
