package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Input a client controls that the suite cannot use (NUL, invalid UTF-8,
// control characters) in a path, a query, a header or a body string is
// answered 4xx in the JSON error shape on every route, never 500: the
// database refuses such text, and a 500 would count against a breaker.
func TestHostileInputIsAlwaysA4xx(t *testing.T) {
	order := place(t, "c-hostile", "SKU-0044", 1, "4242424242424242")
	orders, inv, pay := suite.urls["orders"], suite.urls["inventory-1"], suite.urls["payments"]
	admin := map[string]string{"Authorization": "Bearer " + adminToken}
	noteBody := func(text string) []byte {
		b, _ := json.Marshal(map[string]string{"text": text, "author": "ops"})
		return b
	}
	for _, tc := range []struct {
		method, url string
		header      map[string]string
		body        []byte
	}{
		{http.MethodGet, orders + "/orders/%00", nil, nil},
		{http.MethodGet, orders + "/orders/%FF%FE", nil, nil},
		{http.MethodGet, orders + "/orders/%00?wait=1s", nil, nil},
		{http.MethodGet, orders + "/orders/%00?as_of=2026-01-01T00:00:00Z", nil, nil},
		{http.MethodGet, orders + "/orders/%00/events", nil, nil},
		{http.MethodPost, orders + "/orders/%00/notes", nil, noteBody("hello")},
		{http.MethodPost, orders + "/orders/" + order.OrderID + "/notes", nil, noteBody("nul \u0000 inside")},
		{http.MethodGet, orders + "/orders?customer_id=%00", nil, nil},
		{http.MethodGet, orders + "/orders?customer_id=%FF", nil, nil},
		{http.MethodGet, orders + "/orders?cursor=%00", nil, nil},
		{http.MethodGet, orders + "/orders?status=%00", nil, nil},
		{http.MethodPost, orders + "/orders", map[string]string{"Idempotency-Key": "\xff\xfe"}, orderBody("c-hostile", "SKU-0044", 1, "4242424242424242")},
		{http.MethodPost, orders + "/orders", nil, orderBody("c-hostile", "\u0000", 1, "4242424242424242")},
		{http.MethodPost, orders + "/orders", nil, orderBody("c-hostile", "SKU-\u001b[31m", 1, "4242424242424242")},
		{http.MethodGet, inv + "/products/%00", nil, nil},
		{http.MethodGet, inv + "/products/%FF", nil, nil},
		{http.MethodGet, inv + "/products?sku=%00", nil, nil},
		{http.MethodGet, inv + "/reservations?order_id=%00", nil, nil},
		{http.MethodGet, inv + "/reservations?order_id=%FF%FE", nil, nil},
		{http.MethodPut, inv + "/admin/stock/%00", admin, []byte(`{"available": 5}`)},
		{http.MethodGet, pay + "/payments?order_id=%00", nil, nil},
		{http.MethodGet, pay + "/payments?order_id=%FF", nil, nil},
	} {
		status, body, err := call(tc.method, tc.url, tc.body, tc.header)
		var e errorBody
		if err != nil || status < 400 || status >= 500 || json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
			t.Errorf("%s %s: %d %s %v, want a 4xx in the JSON error shape", tc.method, tc.url, status, body, err)
		}
	}
}

// A client that sends a SKU that is not text gets 400 naming the field,
// and however many it sends, inventory's breaker stays closed: every
// valid order right after is accepted. (Before, inventory answered 500,
// orders counted it against the breaker, and ten such requests stopped
// all sales for the breaker's open time.)
func TestBadInputNeverOpensADependencysBreaker(t *testing.T) {
	opened := metric(t, "orders", "breaker_transitions_total", `breaker="inventory"`, `to="open"`)
	for range 10 {
		status, body, _ := call(http.MethodPost, suite.urls["orders"]+"/orders", orderBody("c-nul", "\u0000", 1, "4242424242424242"), nil)
		var e errorBody
		_ = json.Unmarshal(body, &e)
		if _, named := e.Error.Fields["items[0].sku"]; status != http.StatusBadRequest || !named {
			t.Fatalf("a NUL SKU: %d %s, want 400 naming items[0].sku", status, body)
		}
	}
	if n := metric(t, "orders", "breaker_transitions_total", `breaker="inventory"`, `to="open"`); n != opened {
		t.Fatalf("inventory's breaker opened %v times during a storm of bad SKUs", n-opened)
	}
	status, body, _ := call(http.MethodPost, suite.urls["orders"]+"/orders", orderBody("c-nul", "SKU-0045", 1, "4242424242424242"), nil)
	if status != http.StatusAccepted {
		t.Fatalf("a valid order after the bad ones: %d %s", status, body)
	}
	if strings.Contains(string(body), "inventory_unavailable") {
		t.Fatal("inventory unavailable after bad input")
	}
}
