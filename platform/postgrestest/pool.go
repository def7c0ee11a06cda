package postgrestest

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/postgres"
)

// Pool opens a fresh database for t with the given migration sets applied
// (name → files), closed and dropped when t ends.
func Pool(t testing.TB, sets map[string]fs.FS) *pgxpool.Pool {
	t.Helper()
	admin, name := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, admin, name, postgres.Config{})
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
