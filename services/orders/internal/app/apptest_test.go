package app_test

import (
	"testing"

	"github.com/example/sagasuite/services/orders/internal/app/appfake"
	"github.com/example/sagasuite/services/orders/internal/app/apptest"
)

// The command ports' suite on the fake the use-case tests run on;
// ordersdb runs the same suite on PostgreSQL.
func TestPortsOnTheFake(t *testing.T) {
	apptest.Run(t, func(t *testing.T) apptest.Store { return appfake.NewStore() })
}
