package postgres

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/retry"
)

// DB is a service's own database as a process component: readiness is a
// ping, Close closes the pool.
type DB struct {
	*pgxpool.Pool
}

// Ready is a readiness check: nil while the database answers.
func (db DB) Ready(ctx context.Context) error { return db.Ping(ctx) }

// Lifecycle: ready while the database answers; the pool closes at stop.
func (db DB) Lifecycle() lifecycle.Parts {
	return lifecycle.Parts{Ready: db.Ready, Close: func() error { db.Close(); return nil }}
}

// Connect opens the database of s (creating it if missing), waiting up to
// a minute for the server to answer: it may still be starting. Migrations
// are the callers': each store and platform component migrates its own
// tables in its Setup.
func Connect(ctx context.Context, s Settings, cfg Config, log *slog.Logger) (DB, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var db DB
	err := retry.Until(ctx, log, "postgres", func(ctx context.Context) (err error) {
		db.Pool, err = Open(ctx, s.URL, s.Name, s.Config(cfg))
		return err
	})
	return db, err
}
