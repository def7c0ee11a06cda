package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/observe"
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
func Connect(ctx context.Context, s Settings, tel observe.Bundle, cfg Config) (DB, error) {
	if err := tel.For("database " + s.Name); err != nil {
		return DB{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var db DB
	err := retry.Until(ctx, tel.Logger, "postgres", func(ctx context.Context) (err error) {
		db.Pool, err = Open(ctx, s.URL, s.Name, tel, s.Config(cfg))
		return err
	})
	return db, err
}
