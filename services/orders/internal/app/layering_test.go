package app_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The application layer depends on the domain and on the ports it
// declares, never on an adapter: it imports no database driver, HTTP or
// Kafka library, and none of orders' adapters, even indirectly. Adapters
// depend on app, not the other way round. (Platform types it names in
// its ports, eventstore.Event and outbox.Message, bring their drivers
// along indirectly; those are not app's to call.)
func TestAppImportsNoAdapter(t *testing.T) {
	direct, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range strings.Fields(string(direct)) {
		for _, banned := range []string{"github.com/jackc/pgx", "github.com/labstack/echo", "github.com/segmentio/kafka-go", "net/http"} {
			if strings.HasPrefix(imp, banned) {
				t.Errorf("app imports %s", imp)
			}
		}
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/example/sagasuite/services/orders/internal/ordersdb",
			"github.com/example/sagasuite/services/orders/internal/readmodel",
			"github.com/example/sagasuite/services/orders/internal/httpapi",
			"github.com/example/sagasuite/services/orders/internal/saga",
		} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("app depends on %s", dep)
			}
		}
	}
}
