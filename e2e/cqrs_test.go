package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Read-your-writes under load: a client that reads with the position its
// write returned always sees that write, while other clients keep writing.
func TestReadYourWritesUnderLoad(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				o, pos := placeAt(t, fmt.Sprintf("ryw-%d", w), fmt.Sprintf("SKU-%04d", 20+i), 1, "4242424242424242")
				status, body, err := call(http.MethodGet, suite.urls["orders"]+"/orders/"+o.OrderID+"?min_position="+pos, nil, nil)
				if err != nil || status != http.StatusOK {
					errs <- fmt.Errorf("read own order %s at %s: %d %s %v", o.OrderID, pos, status, body, err)
					continue
				}
				var got orderView
				_ = json.Unmarshal(body, &got)
				if got.OrderID != o.OrderID || got.Version < 1 {
					errs <- fmt.Errorf("read %+v, want order %s", got, o.OrderID)
				}
				// The list query honours the same token.
				status, body, _ = call(http.MethodGet, suite.urls["orders"]+"/orders?customer_id="+o.CustomerID+"&limit=100&min_position="+pos, nil, nil)
				if status != http.StatusOK || !strings.Contains(string(body), o.OrderID) {
					errs <- fmt.Errorf("own order %s missing from the list at %s: %d", o.OrderID, pos, status)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestListFiltersAndPagesStablyWhileOrdersArrive(t *testing.T) {
	customer := "list-" + randHex(4)
	var last string
	for i := range 7 {
		_, last = placeAt(t, customer, fmt.Sprintf("SKU-%04d", 40+i), 1, "4242424242424242")
	}
	seen := map[string]bool{}
	cursor := ""
	pages := 0
	for {
		q := url.Values{"customer_id": {customer}, "limit": {"3"}, "min_position": {last}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p struct {
			Orders     []orderView `json:"orders"`
			NextCursor string      `json:"next_cursor"`
		}
		getJSON(t, suite.urls["orders"]+"/orders?"+q.Encode(), &p)
		pages++
		for i, o := range p.Orders {
			if seen[o.OrderID] || o.CustomerID != customer {
				t.Fatalf("page %d: %+v repeated or foreign", pages, o)
			}
			seen[o.OrderID] = true
			if i > 0 && o.CreatedAt.After(p.Orders[i-1].CreatedAt) {
				t.Fatalf("page %d not newest first", pages)
			}
		}
		// New orders arriving meanwhile land before page 1, not in later pages.
		placeAt(t, customer, "SKU-0060", 1, "4242424242424242")
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(seen) != 7 || pages != 3 {
		t.Fatalf("paged through %d orders in %d pages, want the 7 that existed in 3", len(seen), pages)
	}
	var confirmed struct {
		Orders []orderView `json:"orders"`
	}
	eventually(t, "status filter", func() error {
		getJSON(t, suite.urls["orders"]+"/orders?customer_id="+customer+"&status=CONFIRMED&limit=100", &confirmed)
		if len(confirmed.Orders) < 7 {
			return fmt.Errorf("%d confirmed", len(confirmed.Orders))
		}
		for _, o := range confirmed.Orders {
			if o.Status != "CONFIRMED" {
				return fmt.Errorf("status filter returned %s", o.Status)
			}
		}
		return nil
	})
	for _, bad := range []string{"limit=0", "limit=101", "limit=x", "status=LOST", "cursor=bm9wZQ", "min_position=-1"} {
		status, body, _ := call(http.MethodGet, suite.urls["orders"]+"/orders?"+bad, nil, nil)
		if status != http.StatusBadRequest || !strings.Contains(string(body), "validation_failed") {
			t.Errorf("GET /orders?%s: %d %s, want 400", bad, status, body)
		}
	}
}

func TestTimeTravel(t *testing.T) {
	o, _ := placeAt(t, "c-travel", "SKU-0061", 1, "4242424242424242")
	done := waitTerminal(t, o.OrderID)
	at := func(ts time.Time) (int, orderView) {
		status, body, _ := call(http.MethodGet, suite.urls["orders"]+"/orders/"+o.OrderID+"?as_of="+url.QueryEscape(ts.Format(time.RFC3339Nano)), nil, nil)
		var v orderView
		_ = json.Unmarshal(body, &v)
		return status, v
	}
	if status, _ := at(o.CreatedAt.Add(-time.Second)); status != http.StatusNotFound {
		t.Fatalf("before the first event: %d, want 404", status)
	}
	if status, v := at(o.CreatedAt); status != 200 || v.Status != "PENDING" || v.Version != 1 {
		t.Fatalf("at placement: %d %+v", status, v)
	}
	if status, v := at(done.UpdatedAt); status != 200 || v.Status != "CONFIRMED" || v.Version != 2 {
		t.Fatalf("at confirmation: %d %+v", status, v)
	}
	if status, _, _ := call(http.MethodGet, suite.urls["orders"]+"/orders/"+o.OrderID+"?as_of=yesterday", nil, nil); status != 400 {
		t.Fatalf("bad as_of: %d", status)
	}
}

// Notes: the command with If-Match wins once per version; the losers of a
// race get 409 version_conflict; without If-Match they retry and all land.
func TestConcurrentNotesOptimisticConcurrency(t *testing.T) {
	o := place(t, "c-notes", "SKU-0062", 1, "4242424242424242")
	done := waitTerminal(t, o.OrderID)
	note := func(ifMatch string) (int, http.Header, []byte) {
		req, _ := http.NewRequest(http.MethodPost, suite.urls["orders"]+"/orders/"+o.OrderID+"/notes",
			bytes.NewBufferString(`{"text":"checked by phone","author":"agent-7"}`))
		req.Header.Set("Content-Type", "application/json")
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, resp.Header, b.Bytes()
	}
	const racers = 6
	results := make(chan int, racers)
	var wg sync.WaitGroup
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, body := note(strconv.Quote(strconv.FormatInt(done.Version, 10)))
			if status == http.StatusConflict && !strings.Contains(string(body), "version_conflict") {
				t.Errorf("409 without version_conflict: %s", body)
			}
			results <- status
		}()
	}
	wg.Wait()
	close(results)
	wins := 0
	for s := range results {
		switch s {
		case http.StatusCreated:
			wins++
		case http.StatusConflict:
		default:
			t.Fatalf("status %d", s)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racers at version %d won, want exactly 1", wins, done.Version)
	}
	for range racers { // without If-Match every note lands
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, _, body := note(""); status != http.StatusCreated {
				t.Errorf("note without If-Match: %d %s", status, body)
			}
		}()
	}
	wg.Wait()
	_, h, _ := note("")
	var after orderView
	getJSON(t, suite.urls["orders"]+"/orders/"+o.OrderID+"?min_position="+h.Get("Event-Position"), &after)
	if after.Notes != racers+2 || after.Status != "CONFIRMED" || after.Version != done.Version+racers+2 {
		t.Fatalf("order after notes %+v", after)
	}
	if status, _, _ := note(`"1"`); status != http.StatusConflict {
		t.Fatalf("stale If-Match: %d", status)
	}
	var events []struct {
		Type     string            `json:"type"`
		Metadata map[string]string `json:"metadata"`
	}
	getJSON(t, suite.urls["orders"]+"/orders/"+o.OrderID+"/events", &events)
	if len(events) != int(after.Version) || events[len(events)-1].Type != "OrderNoteAdded" || events[len(events)-1].Metadata["causation_type"] != "http" {
		t.Fatalf("audit trail %+v", events)
	}
}

// A rebuild while orders keep coming: GETs keep answering from a complete
// model throughout, and afterwards the rebuilt model holds every order.
func TestProjectionRebuildWhileServing(t *testing.T) {
	admin := map[string]string{"Authorization": "Bearer " + adminToken}
	if status, _, _ := call(http.MethodPost, suite.urls["orders"]+"/admin/projections/order_summaries/rebuild", nil, nil); status != 401 {
		t.Fatalf("rebuild without token: %d", status)
	}
	known := place(t, "c-rebuild", "SKU-0063", 1, "4242424242424242")
	waitTerminal(t, known.OrderID)
	status, body, _ := call(http.MethodPost, suite.urls["orders"]+"/admin/projections/order_summaries/rebuild", nil, admin)
	if status != http.StatusAccepted {
		t.Fatalf("rebuild: %d %s", status, body)
	}
	var placed []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		o, _ := placeAt(t, "c-rebuild", "SKU-0064", 1, "4242424242424242")
		placed = append(placed, o.OrderID)
		if s, b, _ := call(http.MethodGet, suite.urls["orders"]+"/orders/"+known.OrderID, nil, nil); s != 200 || !strings.Contains(string(b), "CONFIRMED") {
			t.Fatalf("during the rebuild a finished order read %d %s: a half-built model was served", s, b)
		}
		var st []struct {
			Rebuild struct {
				Running bool   `json:"running"`
				Applied int64  `json:"applied"`
				Error   string `json:"error"`
			} `json:"rebuild"`
		}
		getJSONWith(t, suite.urls["orders"]+"/admin/projections", admin, &st)
		if len(st) != 1 || st[0].Rebuild.Error != "" {
			t.Fatalf("status %+v", st)
		}
		if !st[0].Rebuild.Running {
			if st[0].Rebuild.Applied == 0 {
				t.Fatal("rebuild applied nothing")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rebuild did not finish in 30 s")
		}
	}
	for _, id := range placed {
		waitTerminal(t, id)
	}
}

func getJSONWith(t *testing.T, url string, header map[string]string, v any) {
	t.Helper()
	status, body, err := call(http.MethodGet, url, nil, header)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", url, status, body, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatal(err)
	}
}
