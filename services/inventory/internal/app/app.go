// Package app holds inventory's use cases: reserve an order's stock when
// it is placed, commit it when its payment is authorized (the commit is
// what confirms the order), release it (the compensation) when the order
// fails, and expire a reservation the saga never settled. Each runs inside
// one transaction its caller opened (the inbox's for a message, the expiry
// job's for a scan), reached through the Tx port: the stock, the event
// that announces the change and the inbox record commit together, so each
// happens exactly once.
//
// app imports no adapter: inventorydb implements Tx, saga (the Kafka
// handlers) and the expiry job call the use cases, appfake is the
// in-memory Tx the use-case tests run on, and apptest is the one suite
// both must pass.
package app

import (
	"context"
	"errors"

	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
)

// Tx is one transaction on the stock.
type Tx interface {
	// LockStock locks the products of skus (in SKU order, so concurrent
	// transactions never deadlock) and returns their available stock
	// (unknown SKUs are absent), and whether orderID holds reservations
	// in any status: its reservation was decided before. One statement:
	// both are needed before any reservation.
	LockStock(ctx context.Context, orderID string, skus []string) (avail map[string]int64, decided bool, err error)
	// Hold records orderID's reservations of items and moves their stock
	// from available to reserved; LockStock has locked them.
	Hold(ctx context.Context, orderID string, items []catalog.Item) error
	// Held locks orderID's reservations in status and their products (in
	// SKU order) and returns them.
	Held(ctx context.Context, orderID, status string) ([]catalog.Item, error)
	// Move sets items of orderID from status from to status to and moves
	// their stock with them (reserved → committed, reserved or committed
	// → available); Held has locked them.
	Move(ctx context.Context, orderID string, items []catalog.Item, from, to string) error
	// Emit announces an inventory event (through the outbox).
	Emit(ctx context.Context, typ, orderID string, data any) error
}

// Reserve holds every item of the placed order or none, and announces
// which: inventory.reserved, or inventory.rejected (out of stock) with the
// item that failed. It reports whether the stock is held. An order decided
// before is announced reserved again and changes nothing.
func Reserve(ctx context.Context, tx Tx, orderID string, items []catalog.Item) (bool, error) {
	reserved := inventoryevents.StockReserved{OrderID: orderID, Items: make([]inventoryevents.Item, len(items))}
	for i, it := range items {
		reserved.Items[i] = inventoryevents.Item{SKU: it.SKU, Quantity: it.Quantity}
	}
	skus := make([]string, len(items))
	for i, it := range items {
		skus[i] = it.SKU
	}
	avail, decided, err := tx.LockStock(ctx, orderID, skus)
	if err != nil {
		return false, err
	}
	if !decided {
		if err := catalog.CanReserve(avail, items); err != nil {
			if !errors.Is(err, catalog.ErrOutOfStock) {
				return false, err
			}
			return false, tx.Emit(ctx, inventoryevents.Rejected, orderID, inventoryevents.StockRejected{
				OrderID: orderID, Reason: inventoryevents.ReasonOutOfStock, Detail: err.Error()})
		}
		if err := tx.Hold(ctx, orderID, items); err != nil {
			return false, err
		}
	}
	return true, tx.Emit(ctx, inventoryevents.Reserved, orderID, reserved)
}

// Commit turns orderID's reserved stock into sold stock and announces
// inventory.committed, on which orders confirms. It commits only what the
// order still holds: after an expiry or a cancellation released it, it
// commits nothing and announces nothing (the release's own event cancels
// the order, and payments refunds). It reports whether it committed.
func Commit(ctx context.Context, tx Tx, orderID string) (bool, error) {
	held, err := tx.Held(ctx, orderID, catalog.Reserved)
	if err != nil || len(held) == 0 {
		return false, err
	}
	if err := tx.Move(ctx, orderID, held, catalog.Reserved, catalog.Committed); err != nil {
		return false, err
	}
	return true, tx.Emit(ctx, inventoryevents.Committed, orderID, inventoryevents.StockCommitted{OrderID: orderID})
}

// Release is the compensation: everything orderID holds, reserved or
// committed, goes back to available stock, announced as inventory.released
// with reason (the event that triggered it). It reports whether anything
// was held; a second release changes nothing.
func Release(ctx context.Context, tx Tx, orderID, reason string) (bool, error) {
	released := false
	for _, status := range []string{catalog.Reserved, catalog.Committed} {
		held, err := tx.Held(ctx, orderID, status)
		if err != nil {
			return false, err
		}
		if len(held) == 0 {
			continue
		}
		if err := tx.Move(ctx, orderID, held, status, catalog.Released); err != nil {
			return false, err
		}
		released = true
	}
	if !released {
		return false, nil
	}
	return true, tx.Emit(ctx, inventoryevents.Released, orderID, inventoryevents.StockReleased{OrderID: orderID, Reason: reason})
}

// Expire releases orderID's stock only while it is still reserved, and
// announces inventory.expired (orders cancels the order) and
// inventory.released. The expiry job finds candidates before it locks
// them, so a payment may have committed the order in between: committed
// stock is sold, the order confirmed, and it stays so. It reports whether
// it released.
func Expire(ctx context.Context, tx Tx, orderID string) (bool, error) {
	held, err := tx.Held(ctx, orderID, catalog.Reserved)
	if err != nil || len(held) == 0 {
		return false, err
	}
	if err := tx.Move(ctx, orderID, held, catalog.Reserved, catalog.Released); err != nil {
		return false, err
	}
	if err := tx.Emit(ctx, inventoryevents.Expired, orderID, inventoryevents.StockReleased{OrderID: orderID, Reason: inventoryevents.ReasonReservationExpired}); err != nil {
		return false, err
	}
	return true, tx.Emit(ctx, inventoryevents.Released, orderID, inventoryevents.StockReleased{OrderID: orderID, Reason: inventoryevents.Expired})
}
