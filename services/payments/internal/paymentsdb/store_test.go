package paymentsdb_test

import (
	"io/fs"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/payments/internal/app"
	"github.com/example/sagasuite/services/payments/internal/app/apptest"
	"github.com/example/sagasuite/services/payments/internal/paymentsdb"
)

// The ports on PostgreSQL: the same suite appfake passes.
func TestPortsOnPostgreSQL(t *testing.T) {
	apptest.Run(t, func(t *testing.T) apptest.Store {
		pool := postgrestest.Pool(t, map[string]fs.FS{"payments": paymentsdb.Migrations(), "outbox": outbox.Migrations()})
		return pgStore{Store: paymentsdb.New(pool).App(), pool: pool}
	})
}

type pgStore struct {
	app.Store
	pool *pgxpool.Pool
}

func (p pgStore) Announced(t *testing.T) []string {
	return postgrestest.Strings(t, p.pool, `SELECT event_type FROM outbox ORDER BY id`)
}
