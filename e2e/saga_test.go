package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHappyPathConfirmsPaysAndCommits(t *testing.T) {
	before := productOf(t, "SKU-0002")
	o := place(t, "c-happy", "SKU-0002", 3, "4242424242424242")
	if o.Status != "PENDING" || o.Version != 1 || len(o.Items) != 1 || o.Items[0].UnitPriceCents != before.PriceCents || o.TotalCents != 3*before.PriceCents {
		t.Fatalf("accepted order %+v (price %d)", o, before.PriceCents)
	}
	done := waitTerminal(t, o.OrderID)
	if done.Status != "CONFIRMED" || done.Reason != "" || done.Version != 2 {
		t.Fatalf("order %+v, want CONFIRMED at version 2", done)
	}
	ps := paymentsOf(t, o.OrderID)
	if len(ps) != 1 || ps[0].Status != "AUTHORIZED" || ps[0].AmountCents != o.TotalCents || ps[0].CardLast4 != "4242" {
		t.Fatalf("payments %+v, want one AUTHORIZED of %d", ps, o.TotalCents)
	}
	eventually(t, "reservation committed", func() error {
		rs := reservationsOf(t, o.OrderID)
		if len(rs) != 1 || rs[0].Status != "COMMITTED" || rs[0].Quantity != 3 {
			return fmt.Errorf("reservations %+v", rs)
		}
		return nil
	})
	after := productOf(t, "SKU-0002")
	if after.Available != before.Available-3 || after.Reserved != before.Reserved {
		t.Fatalf("stock %+v -> %+v: want 3 fewer available and nothing left reserved", before, after)
	}
}

func TestQuantityAboveStockIsRejectedAndHoldsNothing(t *testing.T) {
	setStock(t, "SKU-0050", 1)
	before := productOf(t, "SKU-0050")
	o := place(t, "c-short", "SKU-0050", 2, "4242424242424242")
	done := waitTerminal(t, o.OrderID)
	if done.Status != "REJECTED" || done.Reason != "out_of_stock" {
		t.Fatalf("order %+v, want REJECTED out_of_stock", done)
	}
	if rs := reservationsOf(t, o.OrderID); len(rs) != 0 {
		t.Fatalf("reservations %+v, want none", rs)
	}
	if ps := paymentsOf(t, o.OrderID); len(ps) != 0 {
		t.Fatalf("payments %+v, want none", ps)
	}
	if after := productOf(t, "SKU-0050"); after != before {
		t.Fatalf("stock %+v -> %+v, want unchanged", before, after)
	}
}

func TestDeclinedCardsCancelAndReleaseStock(t *testing.T) {
	for card, reason := range map[string]string{"4000000000000002": "card_declined", "4000000000009995": "insufficient_funds"} {
		t.Run(reason, func(t *testing.T) {
			before := productOf(t, "SKU-0003")
			o := place(t, "c-declined", "SKU-0003", 5, card)
			done := waitTerminal(t, o.OrderID)
			if done.Status != "CANCELLED" || done.Reason != reason {
				t.Fatalf("order %+v, want CANCELLED %s", done, reason)
			}
			ps := paymentsOf(t, o.OrderID)
			if len(ps) != 1 || ps[0].Status != "DECLINED" || ps[0].Reason != reason {
				t.Fatalf("payments %+v, want one DECLINED %s", ps, reason)
			}
			eventually(t, "reservation released", func() error {
				rs := reservationsOf(t, o.OrderID)
				if len(rs) != 1 || rs[0].Status != "RELEASED" {
					return fmt.Errorf("reservations %+v", rs)
				}
				if after := productOf(t, "SKU-0003"); after != before {
					return fmt.Errorf("stock %+v -> %+v, want back where it was", before, after)
				}
				return nil
			})
		})
	}
}

// A saga that stalls (payments frozen) is cancelled by the watchdog; when
// payments comes back, the order keeps its one terminal status, holds no
// stock and no money.
func TestStalledSagaIsCancelledByWatchdogAndCompensated(t *testing.T) {
	payments := suite.procs["payments"]
	before := productOf(t, "SKU-0004")
	if err := payments.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	o := place(t, "c-stalled", "SKU-0004", 1, "4242424242424242")
	done := waitTerminal(t, o.OrderID) // SAGA_TIMEOUT is 3 s in this suite
	resumed := time.Now()
	if err := payments.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if done.Status != "CANCELLED" || done.Reason != "saga_timeout" {
		t.Fatalf("order %+v, want CANCELLED saga_timeout", done)
	}
	eventually(t, "compensations after payments resumed", func() error {
		for _, p := range paymentsOf(t, o.OrderID) {
			if p.Status != "REFUNDED" {
				return fmt.Errorf("payment %+v: a cancelled order must hold no money", p)
			}
		}
		rs := reservationsOf(t, o.OrderID)
		if len(rs) != 1 || rs[0].Status != "RELEASED" {
			return fmt.Errorf("reservations %+v", rs)
		}
		if after := productOf(t, "SKU-0004"); after != before {
			return fmt.Errorf("stock %+v -> %+v", before, after)
		}
		return nil
	})
	// Give payments time to process what it missed; the status stays.
	time.Sleep(time.Until(resumed.Add(time.Second)))
	if again, _ := getOrder(o.OrderID); again.Status != "CANCELLED" || again.Version != 2 {
		t.Fatalf("order %+v after payments resumed: the terminal status must not change", again)
	}
}

func TestEventsEndpointShowsTheStream(t *testing.T) {
	o := place(t, "c-events", "SKU-0005", 1, "4242424242424242")
	waitTerminal(t, o.OrderID)
	var events []struct {
		Type       string            `json:"type"`
		Version    int64             `json:"version"`
		OccurredAt time.Time         `json:"occurred_at"`
		Data       json.RawMessage   `json:"data"`
		Metadata   map[string]string `json:"metadata"`
	}
	getJSON(t, suite.urls["orders"]+"/orders/"+o.OrderID+"/events", &events)
	if len(events) != 2 || events[0].Type != "OrderPlaced" || events[1].Type != "OrderConfirmed" ||
		events[0].Version != 1 || events[1].Version != 2 || events[0].OccurredAt.IsZero() {
		t.Fatalf("events %+v", events)
	}
	if !strings.Contains(string(events[0].Data), `"card_last4":"4242"`) || strings.Contains(string(events[0].Data), "4242424242424242") {
		t.Fatalf("placed data %s: want the last four digits only", events[0].Data)
	}
	// Confirmed by inventory's commit (which follows the authorization),
	// not by the authorization itself.
	if events[1].Metadata["causation_type"] != "inventory.committed" || events[0].Metadata["trace_id"] == "" {
		t.Fatalf("metadata %+v", events)
	}
	status, body, _ := call(http.MethodGet, suite.urls["orders"]+"/orders/no-such-order/events", nil, nil)
	if status != http.StatusNotFound || !strings.Contains(string(body), "order_not_found") {
		t.Fatalf("unknown order events: %d %s", status, body)
	}
}

func setStock(t *testing.T, sku string, n int) {
	t.Helper()
	status, body, err := call(http.MethodPut, suite.urls["inventory-1"]+"/admin/stock/"+sku, []byte(fmt.Sprintf(`{"available": %d}`, n)),
		map[string]string{"Authorization": "Bearer " + adminToken})
	if err != nil || status != http.StatusOK {
		t.Fatalf("set stock: %d %s %v", status, body, err)
	}
}
