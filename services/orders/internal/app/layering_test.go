package app_test

import (
	"testing"

	"github.com/example/sagasuite/platform/layering"
)

// The application layer depends on the domain and on the ports it
// declares, never on an adapter: it imports no database driver, HTTP or
// Kafka library, and none of orders' adapters, even indirectly. Adapters
// depend on app, not the other way round.
func TestAppImportsNoAdapter(t *testing.T) {
	layering.Check(t, ".", "ordersdb", "readmodel", "httpapi", "saga", "watchdog", "inventory", "cardseal")
}
