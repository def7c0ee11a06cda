package observe_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/example/sagasuite/platform/observe"
)

func TestCheckNamesEveryMissingProvider(t *testing.T) {
	err := observe.Bundle{Logger: observe.Discard().Logger}.For("breaker inventory")
	if !errors.Is(err, observe.ErrIncomplete) {
		t.Fatalf("incomplete bundle: %v, want ErrIncomplete", err)
	}
	for _, want := range []string{"breaker inventory", "TracerProvider", "MeterProvider", "Propagator"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "Logger") {
		t.Errorf("%q names the logger that is there", err)
	}
	if err := observe.Discard().Check(); err != nil {
		t.Fatalf("Discard is incomplete: %v", err)
	}
}
