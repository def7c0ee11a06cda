package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every rule api/openapi.yaml states for POST /orders is answered with the JSON error shape.
func TestPlaceOrderValidation(t *testing.T) {
	valid := `{"customer_id":"c-42","items":[{"sku":"SKU-0001","quantity":2}],"payment":{"card_number":"4242424242424242"}}`
	big := `{"customer_id":"` + strings.Repeat("x", 70<<10) + `"}`
	items51 := make([]map[string]any, 51)
	for i := range items51 {
		items51[i] = map[string]any{"sku": "SKU-" + strings.Repeat("0", 3) + string(rune('A'+i%26)) + string(rune('a'+i/26)), "quantity": 1}
	}
	b51, _ := json.Marshal(map[string]any{"customer_id": "c", "items": items51, "payment": map[string]string{"card_number": "4242424242424242"}})
	tests := []struct {
		name   string
		body   string
		ctype  string
		status int
		code   string
		field  string
	}{
		{"not json", `{"customer_id":`, "application/json", 400, "invalid_json", ""},
		{"not an object", `[1,2]`, "application/json", 400, "invalid_json", ""},
		{"unknown field", strings.Replace(valid, `"customer_id"`, `"coupon":"x","customer_id"`, 1), "application/json", 400, "invalid_json", ""},
		{"wrong type", strings.Replace(valid, `"quantity":2`, `"quantity":"2"`, 1), "application/json", 400, "invalid_json", ""},
		{"two values", valid + valid, "application/json", 400, "invalid_json", ""},
		{"empty body", ``, "application/json", 400, "invalid_json", ""},
		{"too large", big, "application/json", 413, "payload_too_large", ""},
		{"not json media type", valid, "text/plain", 415, "unsupported_media_type", ""},
		{"customer missing", strings.Replace(valid, `"c-42"`, `""`, 1), "application/json", 400, "validation_failed", "customer_id"},
		{"customer bad chars", strings.Replace(valid, `"c-42"`, `"c 42!"`, 1), "application/json", 400, "validation_failed", "customer_id"},
		{"customer too long", strings.Replace(valid, `"c-42"`, `"`+strings.Repeat("c", 65)+`"`, 1), "application/json", 400, "validation_failed", "customer_id"},
		{"no items", `{"customer_id":"c","items":[],"payment":{"card_number":"4242424242424242"}}`, "application/json", 400, "validation_failed", "items"},
		{"51 items", string(b51), "application/json", 400, "validation_failed", "items"},
		{"duplicate sku", strings.Replace(valid, `{"sku":"SKU-0001","quantity":2}`, `{"sku":"SKU-0001","quantity":2},{"sku":"SKU-0001","quantity":1}`, 1), "application/json", 400, "validation_failed", "items[1].sku"},
		{"quantity 0", strings.Replace(valid, `"quantity":2`, `"quantity":0`, 1), "application/json", 400, "validation_failed", "items[0].quantity"},
		{"quantity 1001", strings.Replace(valid, `"quantity":2`, `"quantity":1001`, 1), "application/json", 400, "validation_failed", "items[0].quantity"},
		{"card short", strings.Replace(valid, `4242424242424242`, `42424242424`, 1), "application/json", 400, "validation_failed", "payment.card_number"},
		{"card long", strings.Replace(valid, `4242424242424242`, `42424242424242424242`, 1), "application/json", 400, "validation_failed", "payment.card_number"},
		{"card not digits", strings.Replace(valid, `4242424242424242`, `4242-4242-4242-4242`, 1), "application/json", 400, "validation_failed", "payment.card_number"},
		{"unknown sku", strings.Replace(valid, `SKU-0001`, `SKU-9999`, 1), "application/json", 422, "unknown_sku", "SKU-9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, suite.urls["orders"]+"/orders", bytes.NewBufferString(tt.body))
			req.Header.Set("Content-Type", tt.ctype)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e errorBody
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("status %d, body is not the JSON error shape: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tt.status || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, e.Error, tt.status, tt.code)
			}
			if _, ok := e.Error.Fields[tt.field]; tt.field != "" && !ok {
				t.Fatalf("fields %v, want %s", e.Error.Fields, tt.field)
			}
			if strings.Contains(e.Error.Message+strings.Join(values(e.Error.Fields), ""), "4242424242424242") {
				t.Fatal("an error echoes the card number")
			}
		})
	}
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestIdempotencyKey(t *testing.T) {
	key := map[string]string{"Idempotency-Key": "key-" + randHex(6)}
	body := orderBody("c-idem", "SKU-0010", 1, "4242424242424242")
	s1, b1, _ := call(http.MethodPost, suite.urls["orders"]+"/orders", body, key)
	s2, b2, _ := call(http.MethodPost, suite.urls["orders"]+"/orders", body, key)
	var o1, o2 orderView
	_ = json.Unmarshal(b1, &o1)
	_ = json.Unmarshal(b2, &o2)
	if s1 != 202 || s2 != 202 || o1.OrderID == "" || o1.OrderID != o2.OrderID {
		t.Fatalf("same key, same body: %d %s / %d %s", s1, b1, s2, b2)
	}
	other := orderBody("c-idem", "SKU-0010", 2, "4242424242424242")
	s3, b3, _ := call(http.MethodPost, suite.urls["orders"]+"/orders", other, key)
	if s3 != http.StatusConflict || !strings.Contains(string(b3), "idempotency_key_reused") {
		t.Fatalf("same key, other body: %d %s", s3, b3)
	}
	long := map[string]string{"Idempotency-Key": strings.Repeat("k", 129)}
	if s, b, _ := call(http.MethodPost, suite.urls["orders"]+"/orders", body, long); s != 400 {
		t.Fatalf("129-char key: %d %s", s, b)
	}
	waitTerminal(t, o1.OrderID)
	if ps := paymentsOf(t, o1.OrderID); len(ps) != 1 {
		t.Fatalf("payments %+v: one order, one payment", ps)
	}
}

func TestNotFoundAndUnknownRoutesAreJSON(t *testing.T) {
	for url, code := range map[string]string{
		suite.urls["orders"] + "/orders/01a00000-0000-7000-8000-000000000000": "order_not_found",
		suite.urls["orders"] + "/nope":                                        "not_found",
		suite.urls["inventory-1"] + "/products/SKU-9999":                      "product_not_found",
		suite.urls["payments"] + "/nope":                                      "not_found",
	} {
		status, body, _ := call(http.MethodGet, url, nil, nil)
		var e errorBody
		if status != 404 || json.Unmarshal(body, &e) != nil || e.Error.Code != code {
			t.Errorf("GET %s: %d %s, want 404 %s", url, status, body, code)
		}
	}
	if status, body, _ := call(http.MethodGet, suite.urls["payments"]+"/payments", nil, nil); status != 400 {
		t.Errorf("payments without order_id: %d %s", status, body)
	}
}

func TestAdminStockNeedsToken(t *testing.T) {
	url := suite.urls["inventory-1"] + "/admin/stock/SKU-0011"
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": adminToken}} {
		status, body, _ := call(http.MethodPut, url, []byte(`{"available": 5}`), h)
		if status != http.StatusUnauthorized || !strings.Contains(string(body), "unauthorized") {
			t.Errorf("headers %v: %d %s, want 401", h, status, body)
		}
	}
	auth := map[string]string{"Authorization": "Bearer " + adminToken}
	if status, body, _ := call(http.MethodPut, url, []byte(`{"available": -1}`), auth); status != 400 {
		t.Errorf("negative stock: %d %s", status, body)
	}
	if status, body, _ := call(http.MethodPut, url, []byte(`{"available": 77}`), auth); status != 200 {
		t.Fatalf("set stock: %d %s", status, body)
	}
	if p := productOf(t, "SKU-0011"); p.Available != 77 {
		t.Fatalf("available %d, want 77", p.Available)
	}
}

func TestInventoryUnreachableAnswers503Fast(t *testing.T) {
	port, _ := freePort()
	name := "orders-no-inventory"
	p := suite.procs["orders"]
	env := append(append([]string(nil), p.env...), "HTTP_ADDR=127.0.0.1:"+port, "INVENTORY_URL=http://127.0.0.1:1", "INSTANCE_ID="+name)
	if err := start(name, "orders", env); err != nil {
		t.Fatal(err)
	}
	defer stop(suite.procs[name])
	defer delete(suite.procs, name)
	suite.urls[name] = "http://127.0.0.1:" + port
	if err := waitReady(name, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, suite.urls[name]+"/orders", bytes.NewReader(orderBody("c", "SKU-0001", 1, "4242424242424242")))
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e errorBody
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 503 || e.Error.Code != "inventory_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d %+v Retry-After %q", resp.StatusCode, e.Error, resp.Header.Get("Retry-After"))
	}
	t.Logf("answered in %v", time.Since(start))
}

// Bad configuration: the process exits non-zero and names every problem at once.
func TestConfigErrorsReportedAtOnce(t *testing.T) {
	for _, binary := range []string{"orders", "payments", "inventory", "psp"} {
		t.Run(binary, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(suite.binDir, binary))
			cmd.Env = append(os.Environ(), "HTTP_ADDR=not-an-address", "LOG_LEVEL=loud", "KAFKA_BROKERS= , ", "DATABASE_URL=mysql://x",
				"SAGA_TIMEOUT=-5s", "PSP_URL=ftp://psp", "SEED_STOCK=lots")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("exited 0 with bad config: %s", out)
			}
			want := map[string][]string{
				"orders":    {"HTTP_ADDR", "LOG_LEVEL", "KAFKA_BROKERS", "DATABASE_URL", "SAGA_TIMEOUT", "PSP_URL"},
				"payments":  {"HTTP_ADDR", "LOG_LEVEL", "KAFKA_BROKERS", "DATABASE_URL", "PSP_URL"},
				"inventory": {"HTTP_ADDR", "LOG_LEVEL", "KAFKA_BROKERS", "DATABASE_URL", "SEED_STOCK"},
				"psp":       {"HTTP_ADDR", "LOG_LEVEL"},
			}[binary]
			for _, name := range want {
				if !strings.Contains(string(out), name) {
					t.Errorf("output does not name %s:\n%s", name, out)
				}
			}
		})
	}
}

// The 202's Location answers 200 at once, however far the read model lags:
// the single order falls back to its event stream (docs/api.md).
func TestLocationAnswersRightAfterTheAccept(t *testing.T) {
	for i := range 50 {
		req, _ := http.NewRequest(http.MethodPost, suite.urls["orders"]+"/orders",
			bytes.NewReader(orderBody("raw-"+strconv.Itoa(i), "SKU-0042", 1, "4242424242424242")))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusAccepted || loc == "" {
			t.Fatalf("POST: %d, Location %q", resp.StatusCode, loc)
		}
		status, body, err := call(http.MethodGet, suite.urls["orders"]+loc, nil, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("try %d: GET %s right after the 202: %d %s %v", i, loc, status, body, err)
		}
	}
	status, body, _ := call(http.MethodGet, suite.urls["orders"]+"/orders/01890000-0000-7000-8000-000000000000", nil, nil)
	if status != http.StatusNotFound || !strings.Contains(string(body), "order_not_found") {
		t.Fatalf("an order that does not exist: %d %s", status, body)
	}
}

// ?wait= follows an order to its outcome in one request, answers PENDING
// when the wait runs out, and refuses waits outside 0..30 s.
func TestWaitFollowsAnOrderInOneRequest(t *testing.T) {
	o := place(t, "waiter", "SKU-0043", 1, "4242424242424242")
	start := time.Now()
	done, err := awaitOrder(o.OrderID, 25*time.Second)
	answered := time.Now()
	if err != nil || done.Status != "CONFIRMED" {
		t.Fatalf("one ?wait= request: %+v %v after %v", done, err, answered.Sub(start))
	}
	// The answer follows the order's outcome, not the end of the wait
	// (however long a starved machine took to get there).
	if lag := answered.Sub(done.UpdatedAt); lag > 2*time.Second {
		t.Fatalf("the wait answered %v after the order finished (%v after asking)", lag, answered.Sub(start))
	}

	for _, bad := range []string{"31s", "-1s", "soon"} {
		status, body, _ := call(http.MethodGet, suite.urls["orders"]+"/orders/"+o.OrderID+"?wait="+bad, nil, nil)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"wait"`) {
			t.Fatalf("wait=%s: %d %s", bad, status, body)
		}
	}

	// Nothing moves while inventory takes no messages: the wait runs out
	// and answers PENDING.
	setConsumption(t, "inventory-1", true)
	setConsumption(t, "inventory-2", true)
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			setConsumption(t, "inventory-1", false)
			setConsumption(t, "inventory-2", false)
		}
	}
	t.Cleanup(resume)
	stuck := place(t, "waiter", "SKU-0043", 1, "4242424242424242")
	start = time.Now()
	got, err := awaitOrder(stuck.OrderID, 400*time.Millisecond)
	took := time.Since(start)
	resume()
	if err != nil || got.Status != "PENDING" || took < 400*time.Millisecond || took > 3*time.Second {
		t.Fatalf("a wait that runs out: %+v %v after %v", got, err, took)
	}
	waitTerminal(t, stuck.OrderID)
}
