package app_test

import (
	"testing"

	"github.com/example/sagasuite/services/inventory/internal/app/appfake"
	"github.com/example/sagasuite/services/inventory/internal/app/apptest"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
)

// The use cases on the in-memory stock; inventorydb runs the same suite
// on PostgreSQL.
func TestUseCasesOnTheFake(t *testing.T) {
	apptest.Run(t, func(t *testing.T) apptest.Stock { return fake{appfake.New(catalog.Seed(10))} })
}

type fake struct{ *appfake.Stock }

func (f fake) Announced(*testing.T) []string {
	var types []string
	for _, e := range f.Events() {
		types = append(types, e.Type)
	}
	return types
}
