package ordersdb_test

import (
	"testing"

	"github.com/example/sagasuite/services/orders/internal/app/apptest"
)

// The command ports on PostgreSQL: the same suite appfake passes.
func TestPortsOnPostgreSQL(t *testing.T) {
	apptest.Run(t, func(t *testing.T) apptest.Store {
		_, repo := newRepo(t, 0)
		return repo
	})
}
