package inventory_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/inventory"
)

// Inventory refusing a request (4xx) is the request's fault: the error
// says so (the client gets a 400), and the breaker never opens on it,
// however often it happens. Inventory failing (5xx) opens it.
func TestRefusalsNeverOpenTheBreaker(t *testing.T) {
	status := http.StatusBadRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	br, err := breaker.New(observe.Discard(), breaker.Settings{Name: "inventory", Failures: 3, IsFailure: inventory.Transient})
	if err != nil {
		t.Fatal(err)
	}
	c := inventory.New(discovery.NewStatic("inventory", srv.URL), guard.Guard{Breaker: br}, http.DefaultTransport)
	for range 10 {
		_, err := c.Prices(context.Background(), []string{"bad"})
		if !errors.Is(err, app.ErrQuoteRefused) || inventory.Transient(err) {
			t.Fatalf("a 400 from inventory: %v, want ErrQuoteRefused and not transient", err)
		}
	}
	status = http.StatusInternalServerError
	for range 3 {
		if _, err := c.Prices(context.Background(), []string{"SKU-0001"}); !inventory.Transient(err) {
			t.Fatalf("a 500 from inventory: %v, want transient", err)
		}
	}
	if _, err := c.Prices(context.Background(), []string{"SKU-0001"}); !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("after 3 failures: %v, want the breaker open", err)
	}
}
