package pspsim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/cardcrypt"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/services/payments/internal/pspsim"
)

func ledger(t *testing.T, url string) []pspsim.ChargeRecord {
	t.Helper()
	resp, err := http.Get(url + "/admin/charges")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l pspsim.Ledger
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	return l.Charges
}

func put(t *testing.T, url, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %v %v", url, resp, err)
	}
	_ = resp.Body.Close()
}

// The ledger is the provider's truth about money: every charge with its
// key, amount and status, approved until refunded. A processing error is
// the key's answer for good: asked again, the provider says the same and
// charges nothing.
func TestLedgerShowsEveryChargeAndItsRefund(t *testing.T) {
	ts := server(t)
	s, c := post(t, ts.URL+"/charges", "charge-a", `{"order_id":"o-test","token":"`+token(t, ts, "4242424242424242", 700)+`","amount_cents":700}`)
	if s != 201 {
		t.Fatal(s, c)
	}
	post(t, ts.URL+"/charges", "charge-b", `{"order_id":"o-test","token":"`+token(t, ts, "4242424242424242", 300)+`","amount_cents":300}`)
	post(t, ts.URL+"/charges", "charge-d", `{"order_id":"o-test","token":"`+token(t, ts, pspsim.CardDeclined, 300)+`","amount_cents":300}`)
	for range 2 {
		if s, _ := post(t, ts.URL+"/charges", "charge-e", `{"order_id":"o-test","token":"`+token(t, ts, pspsim.CardProcessingError, 300)+`","amount_cents":300}`); s != 500 {
			t.Fatalf("processing error card: %d", s)
		}
	}
	post(t, ts.URL+"/refunds", "refund-a", `{"charge_id":"`+c["charge_id"].(string)+`"}`)
	got := map[string]pspsim.ChargeRecord{}
	for _, ch := range ledger(t, ts.URL) {
		got[ch.IdempotencyKey] = ch
	}
	if len(got) != 2 || got["charge-a"].Status != pspsim.Refunded || got["charge-a"].AmountCents != 700 ||
		got["charge-b"].Status != pspsim.Approved || got["charge-b"].AmountCents != 300 {
		t.Fatalf("ledger %+v", got)
	}
}

// A restarted provider remembers its ledger and the answer to every key
// (PSP_LEDGER_FILE): a replayed key is answered as before, not charged
// again, and the charges it holds can still be refunded.
func TestLedgerSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	keys, err := cardcrypt.LoadOrCreateKeyring(filepath.Join(dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := pspsim.Config{Keys: keys, LedgerFile: filepath.Join(dir, "ledger.jsonl")}
	first := serve(t, cfg, &faults.Injector{})
	tok := token(t, first, "4242424242424242", 900)
	_, c1 := post(t, first.URL+"/charges", "charge-o", `{"order_id":"o-test","token":"`+tok+`","amount_cents":900}`)
	first.Close()

	// A crash mid-write leaves half a line: it is dropped, nothing else.
	f, err := os.OpenFile(cfg.LedgerFile, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"key":"charge:half`)
	_ = f.Close()

	again := serve(t, cfg, &faults.Injector{})
	s, c2 := post(t, again.URL+"/charges", "charge-o", `{"order_id":"o-test","token":"`+tok+`","amount_cents":900}`)
	if s != 201 || c2["charge_id"] != c1["charge_id"] || len(ledger(t, again.URL)) != 1 {
		t.Fatalf("replay after a restart: %d %v (first %v), ledger %+v", s, c2, c1, ledger(t, again.URL))
	}
	if s, out := post(t, again.URL+"/refunds", "refund-o", `{"charge_id":"`+c1["charge_id"].(string)+`"}`); s != 201 {
		t.Fatalf("refund after a restart: %d %v", s, out)
	}
}

// A slow provider (latency fault) still charges when the client gives up
// waiting: the charge is in its ledger although the client saw a timeout.
func TestLatencyDoesNotStopTheCharge(t *testing.T) {
	keys, _ := cardcrypt.NewKeyring()
	injector := &faults.Injector{Detached: true}
	ts := serve(t, pspsim.Config{Keys: keys}, injector)
	tok := token(t, ts, "4242424242424242", 5)
	injector.Set(faults.Faults{LatencyMS: 300})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/charges", strings.NewReader(`{"order_id":"o-test","token":"`+tok+`","amount_cents":5}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "charge-late")
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a 300 ms provider with a 50 ms client: %v, want the client's timeout", err)
	}
	injector.Set(faults.Faults{})
	time.Sleep(400 * time.Millisecond)
	if l := ledger(t, ts.URL); len(l) != 1 || l[0].IdempotencyKey != "charge-late" {
		t.Fatalf("ledger %+v: the provider must charge after the client gave up", l)
	}
}

// The provider faults misbehave after the charge is booked: no answer (the
// connection drops), a 500, or a late answer. The ledger has the charge
// each time, and a replay of the key gets the real answer.
func TestProviderFaultsChargeThenMisbehave(t *testing.T) {
	ts := server(t)
	tok := token(t, ts, "4242424242424242", 5)
	body := `{"order_id":"o-test","token":"` + tok + `","amount_cents":5}`
	charge := func(key string) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/charges", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := (&http.Client{Timeout: time.Second}).Do(req)
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	put(t, ts.URL+"/admin/provider-faults", `{"after_charge":"drop","rate":1}`)
	var netErr net.Error
	if _, err := charge("k-drop"); err == nil || errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatalf("dropped: %v, want the connection closed without an answer", err)
	}
	put(t, ts.URL+"/admin/provider-faults", `{"after_charge":"error","rate":1}`)
	if s, err := charge("k-error"); s != 500 || err != nil {
		t.Fatalf("error after charge: %d %v", s, err)
	}
	put(t, ts.URL+"/admin/provider-faults", `{"after_charge":"late","late_ms":1500,"rate":1}`)
	if _, err := charge("k-late"); !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("late answer: %v, want the client's timeout", err)
	}
	put(t, ts.URL+"/admin/provider-faults", `{"after_charge":"","rate":0}`)
	for _, key := range []string{"k-drop", "k-error", "k-late"} {
		if s, err := charge(key); s != 201 || err != nil {
			t.Fatalf("replay of %s: %d %v", key, s, err)
		}
	}
	if l := ledger(t, ts.URL); len(l) != 3 {
		t.Fatalf("ledger %+v, want the 3 charges, each once", l)
	}
}
