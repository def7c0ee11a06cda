// Package inventorydb keeps inventory's products and reservations. Every
// change that moves stock locks the products it touches in SKU order, so
// concurrent orders never deadlock and never oversell.
package inventorydb

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/propagation"

	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/services/inventory/internal/app"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is inventory's own schema.
func Migrations() fs.FS { return postgres.Dir(migrations, "migrations") }

// Querier is satisfied by pgx.Tx and *pgxpool.Pool.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store reads through the pool; changes take the caller's transaction.
type Store struct {
	pool  *pgxpool.Pool
	write outbox.WriteFunc // how events reach the outbox (Outbox)
}

// Setup creates or updates inventory' tables in pool's database and returns
// the store on it.
func Setup(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if err := postgres.Migrate(ctx, pool, "inventory", Migrations()); err != nil {
		return nil, err
	}
	return New(pool), nil
}

// New returns a store on pool, whose tables exist (tests, Setup).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool, write: outbox.Write} }

// SeedIfEmpty inserts products when the catalogue is empty; replicas
// starting together insert once.
func (s *Store) SeedIfEmpty(ctx context.Context, products []catalog.Product) (bool, error) {
	var seeded bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE products IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM products`).Scan(&n); err != nil || n > 0 {
			return err
		}
		rows := make([][]any, len(products))
		for i, p := range products {
			rows[i] = []any{p.SKU, p.Name, p.PriceCents, p.Available}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"sku", "name", "price_cents", "available"}, pgx.CopyFromRows(rows))
		seeded = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("seed catalogue: %w", err)
	}
	return seeded, nil
}

const productColumns = `sku, name, price_cents, available, reserved, committed`

// Products returns the catalogue, or only the given SKUs (unknown ones are
// simply absent), ordered by SKU.
func (s *Store) Products(ctx context.Context, skus []string) ([]catalog.Product, error) {
	q, args := `SELECT `+productColumns+` FROM products ORDER BY sku`, []any{}
	if len(skus) > 0 {
		q, args = `SELECT `+productColumns+` FROM products WHERE sku = ANY($1) ORDER BY sku`, []any{skus}
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	ps, err := pgx.CollectRows(rows, scanProduct)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return ps, nil
}

// Product returns one product or catalog.ErrProductNotFound.
func (s *Store) Product(ctx context.Context, sku string) (catalog.Product, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+productColumns+` FROM products WHERE sku = $1`, sku)
	p, err := pgx.CollectExactlyOneRow(rows, scanProduct)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, catalog.ErrProductNotFound
	}
	if err != nil {
		return p, fmt.Errorf("get product %s: %w", sku, err)
	}
	return p, nil
}

func scanProduct(row pgx.CollectableRow) (catalog.Product, error) {
	var p catalog.Product
	err := row.Scan(&p.SKU, &p.Name, &p.PriceCents, &p.Available, &p.Reserved, &p.Committed)
	return p, err
}

// Reservations returns what orderID holds, by SKU.
func (s *Store) Reservations(ctx context.Context, orderID string) ([]catalog.Reservation, error) {
	rows, err := s.pool.Query(ctx, `SELECT order_id, sku, quantity, status FROM reservations WHERE order_id = $1 ORDER BY sku`, orderID)
	if err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[catalog.Reservation])
	if err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	return rs, nil
}

// lockProducts locks the rows of skus in SKU order and returns their
// available stock, and whether orderID has reservations; the fixed order
// keeps concurrent transactions from deadlocking (FOR UPDATE locks the
// rows as the sort returns them).
func lockProducts(ctx context.Context, tx Querier, orderID string, skus []string) (map[string]int64, bool, error) {
	sorted := append([]string(nil), skus...)
	sort.Strings(sorted)
	rows, err := tx.Query(ctx, `SELECT p.sku, p.available, EXISTS (SELECT 1 FROM reservations r WHERE r.order_id = $2)
		FROM products p WHERE p.sku = ANY($1) ORDER BY p.sku FOR UPDATE OF p`, sorted, orderID)
	if err != nil {
		return nil, false, fmt.Errorf("lock products: %w", err)
	}
	defer rows.Close()
	avail := map[string]int64{}
	decided := false
	for rows.Next() {
		var sku string
		var n int64
		if err := rows.Scan(&sku, &n, &decided); err != nil {
			return nil, false, fmt.Errorf("lock products: %w", err)
		}
		avail[sku] = n
	}
	return avail, decided, rows.Err()
}

// LockBatch locks, in tx and in one round trip, the reservations of
// orders (by order and SKU), then the products of skus and of those
// reservations (by SKU): every lock a batch's handlers take, in the
// order every transaction here takes them (reservations before their
// products, products by SKU), so batches never deadlock (saga.Lock).
func (s *Store) LockBatch(ctx context.Context, tx pgx.Tx, skus, orders []string) error {
	if len(skus) == 0 && len(orders) == 0 {
		return nil
	}
	slices.Sort(orders)
	orders = slices.Compact(orders)
	b := &pgx.Batch{}
	b.Queue(`SELECT 1 FROM reservations WHERE order_id = ANY($1) ORDER BY order_id, sku FOR UPDATE`, orders)
	b.Queue(`SELECT 1 FROM products WHERE sku = ANY($1) OR sku IN (SELECT sku FROM reservations WHERE order_id = ANY($2))
		ORDER BY sku FOR UPDATE`, skus, orders)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("lock the batch's stock: %w", err)
	}
	return nil
}

// In is the store inside tx, as the use cases see it (app.Tx): every
// change joins tx, and events go to the outbox in it.
func (s *Store) In(tx pgx.Tx) app.Tx { return txStock{tx: tx, write: s.write} }

// events is inventory's side of its contract, through the outbox.
var events = outbox.Producer{Topic: inventoryevents.Topic, Source: inventoryevents.Source}

type txStock struct {
	tx    pgx.Tx
	write outbox.WriteFunc
}

func (t txStock) LockStock(ctx context.Context, orderID string, skus []string) (map[string]int64, bool, error) {
	return lockProducts(ctx, t.tx, orderID, skus)
}

func (t txStock) Hold(ctx context.Context, orderID string, items []catalog.Item) error {
	skus, qty := columns(items)
	// The rows are locked and checked: the writes go with the commit.
	if err := postgres.Later(ctx, t.tx, `UPDATE products p SET available = p.available - x.q, reserved = p.reserved + x.q
		FROM unnest($1::text[], $2::bigint[]) AS x(sku, q) WHERE p.sku = x.sku`, skus, qty); err != nil {
		return fmt.Errorf("reserve stock: %w", err)
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier) // the order's trace, for a later compensation
	if err := postgres.Later(ctx, t.tx, `INSERT INTO reservations (order_id, sku, quantity, status, traceparent)
		SELECT $1, x.sku, x.q, 'RESERVED', $4 FROM unnest($2::text[], $3::bigint[]) AS x(sku, q)`, orderID, skus, qty, carrier.Get("traceparent")); err != nil {
		return fmt.Errorf("record reservations: %w", err)
	}
	return nil
}

func (t txStock) Held(ctx context.Context, orderID, status string) ([]catalog.Item, error) {
	// The reservations and their products, locked in SKU order (as
	// lockProducts): Move changes both.
	rows, err := t.tx.Query(ctx, `SELECT r.sku, r.quantity FROM reservations r JOIN products p ON p.sku = r.sku
		WHERE r.order_id = $1 AND r.status = $2 ORDER BY r.sku FOR UPDATE`, orderID, status)
	if err != nil {
		return nil, fmt.Errorf("read reservations: %w", err)
	}
	items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[catalog.Item])
	if err != nil {
		return nil, fmt.Errorf("read reservations: %w", err)
	}
	return items, nil
}

// moves is the stock change of each status change Move makes.
var moves = map[[2]string]string{
	{catalog.Reserved, catalog.Committed}: `UPDATE products p SET reserved = p.reserved - x.q, committed = p.committed + x.q
		FROM unnest($1::text[], $2::bigint[]) AS x(sku, q) WHERE p.sku = x.sku`,
	{catalog.Reserved, catalog.Released}: `UPDATE products p SET reserved = p.reserved - x.q, available = p.available + x.q
		FROM unnest($1::text[], $2::bigint[]) AS x(sku, q) WHERE p.sku = x.sku`,
	{catalog.Committed, catalog.Released}: `UPDATE products p SET committed = p.committed - x.q, available = p.available + x.q
		FROM unnest($1::text[], $2::bigint[]) AS x(sku, q) WHERE p.sku = x.sku`,
}

func (t txStock) Move(ctx context.Context, orderID string, items []catalog.Item, from, to string) error {
	stockSQL, ok := moves[[2]string{from, to}]
	if !ok {
		return fmt.Errorf("move reservations of %s from %s to %s: no such change", orderID, from, to)
	}
	skus, qty := columns(items) // Held locked them
	if err := postgres.Later(ctx, t.tx, stockSQL, skus, qty); err != nil {
		return fmt.Errorf("move stock to %s: %w", to, err)
	}
	if err := postgres.Later(ctx, t.tx, `UPDATE reservations SET status = $3, updated_at = now() WHERE order_id = $1 AND sku = ANY($2)`,
		orderID, skus, to); err != nil {
		return fmt.Errorf("mark reservations %s: %w", to, err)
	}
	return nil
}

func (t txStock) Emit(ctx context.Context, typ, orderID string, data any) error {
	return events.EmitWith(ctx, t.write, t.tx, typ, orderID, data)
}

func columns(items []catalog.Item) ([]string, []int64) {
	skus := make([]string, len(items))
	qty := make([]int64, len(items))
	for i, it := range items {
		skus[i], qty[i] = it.SKU, it.Quantity
	}
	return skus, qty
}

// SetAvailable sets the available stock of sku (restock or drain); reserved
// and committed stock are untouched.
func (s *Store) SetAvailable(ctx context.Context, sku string, available int64) (catalog.Product, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE products SET available = $2 WHERE sku = $1 RETURNING `+productColumns, sku, available)
	p, err := pgx.CollectExactlyOneRow(rows, scanProduct)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, catalog.ErrProductNotFound
	}
	if err != nil {
		return p, fmt.Errorf("set stock of %s: %w", sku, err)
	}
	return p, nil
}

// Expired returns up to limit orders holding reservations RESERVED since
// before cutoff: their saga never reached a payment outcome.
func (s *Store) Expired(ctx context.Context, cutoff time.Time, limit int) ([]Expired, error) {
	rows, err := s.pool.Query(ctx, `SELECT order_id, min(traceparent) FROM reservations WHERE status = 'RESERVED' AND created_at < $1
		GROUP BY order_id ORDER BY min(created_at) LIMIT $2`, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("find expired reservations: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Expired])
	if err != nil {
		return nil, fmt.Errorf("find expired reservations: %w", err)
	}
	return out, nil
}

// Expired is an order whose reservation expired, with the traceparent of
// the step that reserved it.
type Expired struct {
	OrderID     string
	Traceparent string
}

// InTx runs f in a transaction.
func (s *Store) InTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return postgres.InTx(ctx, s.pool, f)
}

// Outbox sets how events reach the outbox: the relay's Write, which hands
// them to the relay of this process once their transaction has committed
// (outbox.Write, the default, leaves them for the relay to find). Call it
// before the store is used.
func (s *Store) Outbox(write outbox.WriteFunc) { s.write = write }
