package pspsim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/observe"

	"github.com/example/sagasuite/platform/cardcrypt"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/services/payments/internal/pspsim"
)

// server runs a simulator with a fresh keyring of its own.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	keys, err := cardcrypt.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, pspsim.Config{Keys: keys}, &faults.Injector{Detached: true})
}

// serve runs a simulator of cfg, its latency faults set through injector.
func serve(t *testing.T, cfg pspsim.Config, injector *faults.Injector) *httptest.Server {
	t.Helper()
	sim, err := pspsim.New(observe.Discard(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpserver.New(observe.Discard(), httpserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sim.Routes(srv.Echo, srv.Echo.Group("/admin"), injector)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		if err := sim.Close(); err != nil {
			t.Error(err)
		}
	})
	return ts
}

func post(t *testing.T, url, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// token seals card to the key the simulator publishes, as a merchant does.
// token seals card to ts's published key for the payment of amountCents
// for order o-test, the order every test charges.
func token(t *testing.T, ts *httptest.Server, card string, amountCents int64) string {
	t.Helper()
	resp, err := http.Get(ts.URL + "/card-encryption-key")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var k pspsim.KeyResponse
	if err := json.NewDecoder(resp.Body).Decode(&k); err != nil || k.Scheme != cardcrypt.Scheme {
		t.Fatalf("key: %+v %v", k, err)
	}
	pub, err := cardcrypt.ParsePublicKey(k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cardcrypt.Seal(pub, card, cardcrypt.Binding{OrderID: "o-test", AmountCents: amountCents})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTestCards(t *testing.T) {
	ts := server(t)
	tests := []struct {
		card   string
		status int
		code   string
	}{
		{"4242424242424242", 201, ""},
		{"5555555555554444", 201, ""},
		{pspsim.CardDeclined, 402, "card_declined"},
		{pspsim.CardInsufficientFunds, 402, "insufficient_funds"},
		{pspsim.CardProcessingError, 500, "processing_error"},
	}
	for i, tt := range tests {
		status, out := post(t, ts.URL+"/charges", "k"+string(rune('a'+i)), `{"order_id":"o-test","token":"`+token(t, ts, tt.card, 500)+`","amount_cents":500}`)
		code := ""
		if e, ok := out["error"].(map[string]any); ok {
			code, _ = e["code"].(string)
		}
		if status != tt.status || code != tt.code {
			t.Errorf("card %s: %d %v, want %d %s", tt.card, status, out, tt.status, tt.code)
		}
	}
}

func TestChargesAndRefundsAreIdempotent(t *testing.T) {
	ts := server(t)
	tok := token(t, ts, "4242424242424242", 500)
	s1, c1 := post(t, ts.URL+"/charges", "order-1", `{"order_id":"o-test","token":"`+tok+`","amount_cents":500}`)
	s2, c2 := post(t, ts.URL+"/charges", "order-1", `{"order_id":"o-test","token":"`+tok+`","amount_cents":500}`)
	if s1 != 201 || s2 != 201 || c1["charge_id"] != c2["charge_id"] {
		t.Fatalf("replayed charge: %v / %v", c1, c2)
	}
	body := `{"charge_id":"` + c1["charge_id"].(string) + `"}`
	r1, o1 := post(t, ts.URL+"/refunds", "refund-1", body)
	r2, o2 := post(t, ts.URL+"/refunds", "refund-1", body)
	if r1 != 201 || r2 != 201 || o1["refund_id"] != o2["refund_id"] || o1["amount_cents"] != float64(500) {
		t.Fatalf("replayed refund: %v / %v", o1, o2)
	}
	if s, _ := post(t, ts.URL+"/refunds", "refund-2", body); s != http.StatusConflict {
		t.Fatalf("second refund of one charge under a new key: %d, want 409", s)
	}
	if s, _ := post(t, ts.URL+"/refunds", "refund-3", `{"charge_id":"ch_nope"}`); s != http.StatusNotFound {
		t.Fatalf("refund of no charge: %d, want 404", s)
	}
}

func TestRejectsBadRequests(t *testing.T) {
	ts := server(t)
	other := server(t)
	foreign := token(t, other, "4242424242424242", 5)
	for name, c := range map[string]struct{ key, body string }{
		"no key":        {"", `{"order_id":"o-test","token":"` + token(t, ts, "4242424242424242", 5) + `","amount_cents":5}`},
		"zero amount":   {"k", `{"order_id":"o-test","token":"` + token(t, ts, "4242424242424242", 5) + `","amount_cents":0}`},
		"foreign token": {"k", `{"order_id":"o-test","token":"` + foreign + `","amount_cents":5}`},
		"garbage token": {"k", `{"order_id":"o-test","token":"enc_v3.nope.nope","amount_cents":5}`},
		"no order":      {"k", `{"token":"` + token(t, ts, "4242424242424242", 5) + `","amount_cents":5}`},
		// A token is good for its own payment only (read from Kafka or
		// a DLQ, it cannot pay for another order or amount).
		"another order":   {"k", `{"order_id":"o-other","token":"` + token(t, ts, "4242424242424242", 5) + `","amount_cents":5}`},
		"another amount":  {"k", `{"order_id":"o-test","token":"` + token(t, ts, "4242424242424242", 5) + `","amount_cents":6}`},
		"card in charges": {"k", `{"card_number":"4242424242424242","amount_cents":5}`},
	} {
		if s, out := post(t, ts.URL+"/charges", c.key, c.body); s != 400 {
			t.Errorf("%s: %d %v, want 400", name, s, out)
		}
	}
}

// After a rotation the simulator publishes the new key and still charges
// cards sealed to the old one.
func TestKeyRotation(t *testing.T) {
	ts := server(t)
	before := token(t, ts, "4242424242424242", 5)
	if s, out := post(t, ts.URL+"/admin/card-encryption-key/rotate", "", ""); s != 200 {
		t.Fatalf("rotate: %d %v", s, out)
	}
	after := token(t, ts, "4242424242424242", 5)
	idOf := func(tok string) string { return strings.Split(tok, ".")[1] }
	if idOf(before) == idOf(after) {
		t.Fatalf("the published key did not change: %s", idOf(after))
	}
	for i, tok := range []string{before, after} {
		if s, out := post(t, ts.URL+"/charges", fmt.Sprint("rot-", i), `{"order_id":"o-test","token":"`+tok+`","amount_cents":5}`); s != 201 && s != 200 {
			t.Errorf("charge with the key %s: %d %v", idOf(tok), s, out)
		}
	}
}
