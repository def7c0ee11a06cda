package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The repository's own modules pass; the graph the last round had (each
// service requiring the other two for their contract packages) fails, as
// does any cycle through other modules.
func TestModuleGraph(t *testing.T) {
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, m := range []string{"platform", "platform/cmd", "e2e", "services/orders", "services/orders/orderevents",
		"services/payments", "services/payments/paymentevents", "services/inventory", "services/inventory/inventoryevents"} {
		dirs = append(dirs, filepath.Join(repo, m))
	}
	if err := run(dirs, io.Discard); err != nil {
		t.Fatalf("the repository's modules: %v", err)
	}

	tmp := t.TempDir()
	mod := func(dir, path string, requires ...string) string {
		t.Helper()
		d := filepath.Join(tmp, dir)
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
		text := "module " + path + "\n\ngo 1.26.0\n"
		for _, r := range requires {
			text += "\nrequire " + r + " v0.0.0\n"
		}
		if err := os.WriteFile(filepath.Join(d, "go.mod"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	const s = "example.com/x/services/"
	old := []string{
		mod("a", s+"orders", s+"payments"),
		mod("b", s+"payments", s+"orders"),
	}
	err = run(old, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "cycle") || !strings.Contains(err.Error(), "requires the service") {
		t.Fatalf("services requiring each other: %v", err)
	}
	indirect := []string{
		mod("c", "example.com/x/platform", "example.com/x/kit"),
		mod("d", "example.com/x/kit", "example.com/x/platform"),
		mod("e", s+"orders/orderevents"),
	}
	if err := run(indirect, io.Discard); err == nil || !strings.Contains(err.Error(), "example.com/x/kit → example.com/x/platform → example.com/x/kit") &&
		!strings.Contains(err.Error(), "example.com/x/platform → example.com/x/kit → example.com/x/platform") {
		t.Fatalf("platform ⇄ kit: %v", err)
	}
}
