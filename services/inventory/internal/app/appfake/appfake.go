// Package appfake is an in-memory stock behind app.Tx, for tests of the
// use cases that need no database. apptest holds it to the same suite as
// inventorydb, so the two cannot drift apart.
package appfake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/example/sagasuite/services/inventory/internal/app"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
)

// Stock is the products, reservations and announced events. Transactions
// run one at a time (as if every one locked everything) and apply whole
// or not at all.
type Stock struct {
	mu    sync.Mutex
	state state
}

type state struct {
	products     map[string]catalog.Product
	reservations map[string][]catalog.Reservation // by order id, in SKU order
	events       []Event
}

// Event is one announced event.
type Event struct {
	Type, OrderID string
	Data          any
}

// New returns a stock holding products.
func New(products []catalog.Product) *Stock {
	s := &Stock{state: state{products: map[string]catalog.Product{}, reservations: map[string][]catalog.Reservation{}}}
	for _, p := range products {
		s.state.products[p.SKU] = p
	}
	return s
}

// InTx runs f on a copy of the stock and keeps the copy only if f succeeds.
func (s *Stock) InTx(ctx context.Context, f func(app.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := state{products: maps.Clone(s.state.products), reservations: map[string][]catalog.Reservation{},
		events: slices.Clone(s.state.events)}
	for id, rs := range s.state.reservations {
		next.reservations[id] = slices.Clone(rs)
	}
	if err := f(&tx{st: &next}); err != nil {
		return err
	}
	s.state = next
	return nil
}

// Product returns one product or catalog.ErrProductNotFound.
func (s *Stock) Product(_ context.Context, sku string) (catalog.Product, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.state.products[sku]
	if !ok {
		return p, catalog.ErrProductNotFound
	}
	return p, nil
}

// Reservations returns what orderID holds, by SKU.
func (s *Stock) Reservations(_ context.Context, orderID string) ([]catalog.Reservation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.state.reservations[orderID]), nil
}

// Events returns what was announced, in order.
func (s *Stock) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.state.events)
}

type tx struct{ st *state }

func (t *tx) LockStock(_ context.Context, orderID string, skus []string) (map[string]int64, bool, error) {
	avail := map[string]int64{}
	for _, sku := range skus {
		if p, ok := t.st.products[sku]; ok {
			avail[sku] = p.Available
		}
	}
	return avail, len(t.st.reservations[orderID]) > 0, nil
}

func (t *tx) Hold(_ context.Context, orderID string, items []catalog.Item) error {
	for _, it := range items {
		p, ok := t.st.products[it.SKU]
		if !ok {
			return fmt.Errorf("hold %s: not in the catalogue", it.SKU)
		}
		p.Available -= it.Quantity
		p.Reserved += it.Quantity
		t.st.products[it.SKU] = p
		t.st.reservations[orderID] = append(t.st.reservations[orderID],
			catalog.Reservation{OrderID: orderID, SKU: it.SKU, Quantity: it.Quantity, Status: catalog.Reserved})
	}
	slices.SortFunc(t.st.reservations[orderID], func(a, b catalog.Reservation) int { return strings.Compare(a.SKU, b.SKU) })
	return nil
}

func (t *tx) Held(_ context.Context, orderID, status string) ([]catalog.Item, error) {
	var items []catalog.Item
	for _, r := range t.st.reservations[orderID] {
		if r.Status == status {
			items = append(items, catalog.Item{SKU: r.SKU, Quantity: r.Quantity})
		}
	}
	return items, nil
}

func (t *tx) Move(_ context.Context, orderID string, items []catalog.Item, from, to string) error {
	field := func(p *catalog.Product, status string) *int64 {
		switch status {
		case catalog.Reserved:
			return &p.Reserved
		case catalog.Committed:
			return &p.Committed
		default:
			return &p.Available
		}
	}
	if from == to || from == catalog.Released || (from == catalog.Committed && to != catalog.Released) {
		return fmt.Errorf("move reservations of %s from %s to %s: no such change", orderID, from, to)
	}
	for _, it := range items {
		p := t.st.products[it.SKU]
		*field(&p, from) -= it.Quantity
		*field(&p, to) += it.Quantity
		t.st.products[it.SKU] = p
		for i, r := range t.st.reservations[orderID] {
			if r.SKU == it.SKU {
				t.st.reservations[orderID][i].Status = to
			}
		}
	}
	return nil
}

func (t *tx) Emit(_ context.Context, typ, orderID string, data any) error {
	t.st.events = append(t.st.events, Event{Type: typ, OrderID: orderID, Data: data})
	return nil
}
