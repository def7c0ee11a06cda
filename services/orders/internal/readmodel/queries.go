package readmodel

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/projection"
	"github.com/example/sagasuite/services/orders/internal/app"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/services/orders/internal/order"
)

// The query side: reads of order_summaries, the projected read model.
// Queries implements app.Reader.

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the read model's schema (order_summaries); the
// projector's checkpoints are projection.Migrations.
func Migrations() fs.FS { return postgres.Dir(migrations, "migrations") }

// Queries reads the read model.
type Queries struct{ pool *pgxpool.Pool }

// Setup creates or updates the read model's tables (order_summaries and
// the projector's checkpoints) in pool's database and returns its queries.
func Setup(ctx context.Context, pool *pgxpool.Pool) (*Queries, error) {
	for _, set := range []struct {
		name string
		fsys fs.FS
	}{{"projection", projection.Migrations()}, {"readmodel", Migrations()}} {
		if err := postgres.Migrate(ctx, pool, set.name, set.fsys); err != nil {
			return nil, err
		}
	}
	return &Queries{pool: pool}, nil
}

const summaryColumns = `order_id, customer_id, status, reason, items, total_cents, currency, notes, version, created_at, updated_at`

func scanSummary(row pgx.CollectableRow) (order.Order, error) {
	var o order.Order
	var items []byte
	if err := row.Scan(&o.ID, &o.CustomerID, &o.Status, &o.Reason, &items, &o.TotalCents, &o.Currency, &o.Notes,
		&o.Version, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return o, err
	}
	return o, json.Unmarshal(items, &o.Items)
}

// Get returns an order from the read model, or order.ErrNotFound.
func (r *Queries) Get(ctx context.Context, id string) (order.Order, error) {
	rows, _ := r.pool.Query(ctx, `SELECT `+summaryColumns+` FROM order_summaries WHERE order_id = $1`, id)
	o, err := pgx.CollectExactlyOneRow(rows, scanSummary)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, fmt.Errorf("%s: %w", id, order.ErrNotFound)
	}
	if err != nil {
		return o, fmt.Errorf("get order %s: %w", id, err)
	}
	return o, nil
}

// List returns a page and the cursor of the next one (empty on the last).
// Pages are keyset-paginated on (created_at, order_id): orders placed while
// a client pages through land before its first page, never shifting rows
// between pages.
func (r *Queries) List(ctx context.Context, f app.Filter) ([]order.Order, string, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.CustomerID != "" {
		where = append(where, "customer_id = "+arg(f.CustomerID))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(string(f.Status)))
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, fmt.Sprintf("(created_at, order_id) < (%s, %s)", arg(at), arg(id)))
	}
	q := `SELECT ` + summaryColumns + ` FROM order_summaries`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, order_id DESC LIMIT " + arg(f.Limit+1)
	rows, err := r.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list orders: %w", err)
	}
	page, err := pgx.CollectRows(rows, scanSummary)
	if err != nil {
		return nil, "", fmt.Errorf("list orders: %w", err)
	}
	next := ""
	if len(page) > f.Limit {
		page = page[:f.Limit]
		last := page[len(page)-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	return page, next, nil
}

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", app.ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(b), "|")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", app.ErrBadCursor
	}
	return at, id, nil
}

// Stalled is a PENDING order older than the cutoff, with the trace context
// of the request that placed it.
type Stalled struct {
	ID    string
	Trace map[string]string
}

// Pending counts the orders PENDING in the read model (an index-only scan
// of order_summaries_status).
func (r *Queries) Pending(ctx context.Context) (int64, error) {
	var n int64
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM order_summaries WHERE status = 'PENDING'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending orders: %w", err)
	}
	return n, nil
}

// Stalled returns up to limit orders PENDING since before cutoff, oldest
// first, as the read model shows them.
func (r *Queries) Stalled(ctx context.Context, cutoff time.Time, limit int) ([]Stalled, error) {
	rows, err := r.pool.Query(ctx, `SELECT order_id, trace_context FROM order_summaries
		WHERE status = 'PENDING' AND created_at < $1 ORDER BY created_at LIMIT $2`, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("find stalled orders: %w", err)
	}
	defer rows.Close()
	var out []Stalled
	for rows.Next() {
		var s Stalled
		var tc []byte
		if err := rows.Scan(&s.ID, &tc); err != nil {
			return nil, fmt.Errorf("find stalled orders: %w", err)
		}
		_ = json.Unmarshal(tc, &s.Trace)
		out = append(out, s)
	}
	return out, rows.Err()
}
