package postgrestest

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/postgres"
)

// Pool opens a fresh database for t with the given migration sets applied
// (name → files), closed and dropped when t ends.
func Pool(t testing.TB, sets map[string]fs.FS) *pgxpool.Pool {
	t.Helper()
	admin, name := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, admin, name, observe.Discard(), postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for set, fsys := range sets {
		if err := postgres.Migrate(ctx, pool, set, fsys); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

// Strings returns the one text column of query's rows, in order: what a
// test compares a table with, such as the event types an outbox holds
// (SELECT event_type FROM outbox ORDER BY id).
func Strings(t testing.TB, pool *pgxpool.Pool, query string, args ...any) []string {
	t.Helper()
	rows, _ := pool.Query(context.Background(), query, args...)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}
