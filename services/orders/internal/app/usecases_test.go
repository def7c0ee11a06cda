package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/services/orders/internal/app"
	"github.com/example/sagasuite/services/orders/internal/app/appfake"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/orderevents"
)

var prices = map[string]int64{"SKU-0001": 250, "SKU-0002": 1000}

func newOrders(t *testing.T, store *appfake.Store, q appfake.Quoter, tk appfake.Tokenizer) *app.Orders {
	t.Helper()
	o, err := app.New(app.Deps{Store: store, Idempotency: store, History: store, Reader: store, Projection: appfake.Projection{},
		Quoter: q, Tokenizer: tk}, observe.Discard(), app.Config{PlaceTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func request(key string) app.PlaceRequest {
	return app.PlaceRequest{CustomerID: "c-42", Lines: []order.Line{{SKU: "SKU-0001", Quantity: 2}, {SKU: "SKU-0002", Quantity: 1}},
		CardNumber: "4242424242424242", IdempotencyKey: key}
}

func TestPlace(t *testing.T) {
	unavailable := errors.New("connection refused")
	for _, tt := range []struct {
		name    string
		quoter  appfake.Quoter
		tk      appfake.Tokenizer
		prepare func(s *appfake.Store, o *app.Orders) // earlier requests
		req     app.PlaceRequest
		wantErr func(error) bool
		stored  int // orders in the store afterwards
	}{
		{name: "accepted", req: request(""), stored: 1},
		{name: "invalid request", req: app.PlaceRequest{CustomerID: "", CardNumber: "12"},
			wantErr: func(err error) bool { var e *app.InvalidError; return errors.As(err, &e) }},
		{name: "unknown sku", req: app.PlaceRequest{CustomerID: "c", Lines: []order.Line{{SKU: "NOPE", Quantity: 1}}, CardNumber: "4242424242424242"},
			wantErr: func(err error) bool { var e *app.UnknownSKUError; return errors.As(err, &e) && e.SKUs[0] == "NOPE" }},
		{name: "inventory down", quoter: appfake.Quoter{Err: unavailable}, req: request(""),
			wantErr: func(err error) bool {
				return errors.Is(err, app.ErrInventoryUnavailable) && errors.Is(err, unavailable)
			}},
		{name: "provider down", tk: appfake.Tokenizer{Err: unavailable}, req: request(""),
			wantErr: func(err error) bool { return errors.Is(err, app.ErrPaymentUnavailable) }},
		{name: "provider slower than the budget", tk: appfake.Tokenizer{Block: true}, req: request(""),
			wantErr: func(err error) bool { return errors.Is(err, app.ErrBudgetSpent) }},
		{name: "inventory slower than the budget: inventory unavailable, not overloaded", quoter: appfake.Quoter{Block: true}, req: request(""),
			wantErr: func(err error) bool {
				return errors.Is(err, app.ErrInventoryUnavailable) && !errors.Is(err, app.ErrBudgetSpent)
			}},
		{name: "same key, same request: the first order again", req: request("k1"), stored: 1,
			prepare: func(_ *appfake.Store, o *app.Orders) { mustPlace(t, o, request("k1")) }},
		{name: "same key, another request", stored: 1,
			prepare: func(_ *appfake.Store, o *app.Orders) { mustPlace(t, o, request("k1")) },
			req:     func() app.PlaceRequest { r := request("k1"); r.CustomerID = "someone-else"; return r }(),
			wantErr: func(err error) bool { return errors.Is(err, app.ErrKeyReused) }},
		{name: "a concurrent request with the key wins: its order is the answer", req: request("race"), stored: 1,
			prepare: func(s *appfake.Store, _ *app.Orders) { s.StealKey = "race" }},
		{name: "stored, but the commit outlasted the budget: accepted, not retry later", req: request(""), stored: 1,
			prepare: func(s *appfake.Store, _ *app.Orders) { s.LateCommit = true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := appfake.NewStore()
			if tt.quoter.PriceList == nil {
				tt.quoter.PriceList = prices
			}
			orders := newOrders(t, store, tt.quoter, tt.tk)
			if tt.prepare != nil {
				tt.prepare(store, orders)
			}
			res, err := orders.Place(context.Background(), tt.req)
			if tt.wantErr != nil {
				if err == nil || !tt.wantErr(err) {
					t.Fatalf("error %v", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			list, _, _ := store.List(context.Background(), app.Filter{})
			if len(list) != tt.stored {
				t.Fatalf("%d orders stored, want %d", len(list), tt.stored)
			}
			if err != nil {
				return
			}
			if res.Order.Status != order.Pending || res.Order.TotalCents != 2*250+1000 {
				t.Errorf("order %+v", res.Order)
			}
			if res.Order.ID != list[0].ID {
				t.Errorf("answered order %s, want the stored %s", res.Order.ID, list[0].ID)
			}
			if tt.prepare == nil {
				if len(store.Sent) != 1 || store.Sent[0].Topic != orderevents.Topic || store.Sent[0].Event.Type != orderevents.Placed {
					t.Errorf("announced %+v, want one orders.placed", store.Sent)
				}
			}
		})
	}
}

func mustPlace(t *testing.T, o *app.Orders, req app.PlaceRequest) app.Result {
	t.Helper()
	r, err := o.Place(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAddNote(t *testing.T) {
	for _, tt := range []struct {
		name      string
		conflicts int   // racing writers before the note lands
		ifVersion int64 // If-Match
		id        string
		text      string
		wantErr   func(error) bool
		version   int64
	}{
		{name: "added", text: "call first", version: 2},
		{name: "lost races are retried without If-Match", conflicts: 3, text: "call first", version: 2},
		{name: "If-Match of the current version", ifVersion: 1, text: "call first", version: 2},
		{name: "If-Match of an older version", ifVersion: 7, text: "x",
			wantErr: func(err error) bool { return errors.Is(err, app.ErrVersionConflict) }},
		{name: "a lost race with If-Match is a conflict", conflicts: 1, ifVersion: 1, text: "x",
			wantErr: func(err error) bool { return errors.Is(err, app.ErrVersionConflict) }},
		{name: "unknown order", id: "nope", text: "x",
			wantErr: func(err error) bool { return errors.Is(err, order.ErrNotFound) }},
		{name: "empty text", text: "",
			wantErr: func(err error) bool { var e *app.InvalidError; return errors.As(err, &e) && e.Fields["text"] != "" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := appfake.NewStore()
			orders := newOrders(t, store, appfake.Quoter{PriceList: prices}, appfake.Tokenizer{})
			placed := mustPlace(t, orders, request(""))
			store.Conflicts = tt.conflicts
			id := placed.Order.ID
			if tt.id != "" {
				id = tt.id
			}
			res, err := orders.AddNote(context.Background(), app.NoteRequest{OrderID: id, Text: tt.text, Author: "ops", IfVersion: tt.ifVersion})
			if tt.wantErr != nil {
				if err == nil || !tt.wantErr(err) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Order.Version != tt.version || res.Order.Notes != 1 {
				t.Errorf("order %+v, want version %d with one note", res.Order, tt.version)
			}
		})
	}
}
