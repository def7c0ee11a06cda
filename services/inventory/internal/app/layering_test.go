package app_test

import (
	"testing"

	"github.com/example/sagasuite/platform/layering"
)

// app depends on the domain and the ports it declares, never on an
// adapter.
func TestAppImportsNoAdapter(t *testing.T) {
	layering.Check(t, ".", "inventorydb", "httpapi", "saga")
}
