package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A generated service builds, vets and passes its own tests (against the
// real PostgreSQL and an in-process Kafka broker), and the only existing
// files it changes are go.work and dev.procfile.
func TestGeneratedServiceBuildsAndPassesItsTests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests a generated service")
	}
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the repository's layout where the new service's relative
	// replace paths resolve: its neighbours are links to the real ones.
	root := t.TempDir()
	copyFile(t, filepath.Join(repo, "dev.procfile"), filepath.Join(root, "dev.procfile"))
	if err := os.MkdirAll(filepath.Join(root, "services"), 0o750); err != nil {
		t.Fatal(err)
	}
	mods := []string{"platform", "services/orders", "services/payments", "services/inventory"}
	work := "go 1.26.8\n\nuse (\n\t./platform\n"
	for _, m := range mods {
		if err := os.Symlink(filepath.Join(repo, m), filepath.Join(root, m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"services/orders/orderevents", "services/payments/paymentevents", "services/inventory/inventoryevents"} {
		work += "\t./" + m + "\n"
	}
	work += ")\n"
	if err := os.WriteFile(filepath.Join(root, "go.work"), []byte(work), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOWORK", filepath.Join(root, "go.work"))
	copyFile(t, filepath.Join(repo, "go.work.sum"), filepath.Join(root, "go.work.sum"))

	if err := run([]string{"-name", "shipping", "-port", "8085", "-topic", "payments.events"}, root, io.Discard); err != nil {
		t.Fatal(err)
	}
	proc, _ := os.ReadFile(filepath.Join(root, "dev.procfile"))
	if !strings.Contains(string(proc), "shipping: GOGC=400 HTTP_ADDR=:8085 INSTANCE_ID=shipping-1 exec bin/shipping\n"+marker) {
		t.Errorf("dev.procfile has no shipping line above the marker:\n%s", proc)
	}
	if w, _ := os.ReadFile(filepath.Join(root, "go.work")); !strings.Contains(string(w), "./services/shipping") {
		t.Errorf("go.work does not use the service:\n%s", w)
	}

	if w, _ := os.ReadFile(filepath.Join(root, "go.work")); !strings.Contains(string(w), "./services/shipping/shippingevents") {
		t.Errorf("go.work does not use the service's contract module:\n%s", w)
	}

	// The module stands alone: its go.mod (from the template, tidied)
	// names the platform and the two contract modules and nothing of the
	// other services, and it builds, vets and passes its tests outside
	// the workspace.
	svc := filepath.Join(root, "services", "shipping")
	mod, _ := os.ReadFile(filepath.Join(svc, "go.mod"))
	for _, want := range []string{"module github.com/example/sagasuite/services/shipping\n",
		"github.com/example/sagasuite/services/payments/paymentevents => ../payments/paymentevents",
		"github.com/example/sagasuite/services/shipping/shippingevents => ./shippingevents"} {
		if !strings.Contains(string(mod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, mod)
		}
	}
	if strings.Contains(string(mod), "sagasuite/services/payments v") || strings.Contains(string(mod), "testcontainers") {
		t.Errorf("go.mod requires a whole service or testcontainers:\n%s", mod)
	}
	if extra := checkShape(t, svc, service{"shipping", "shippingevents", "shipping", "shippingdb"}); len(extra) > 0 {
		t.Errorf("the generated service has, beyond the shape, %v", extra)
	}
	t.Setenv("GOWORK", "off")
	goIn(t, filepath.Join(svc, "shippingevents"), "build", "./...")
	goIn(t, svc, "build", "./...")
	goIn(t, svc, "vet", "./...")
	goIn(t, svc, "test", "-count=1", "./...")
}

func TestRefusesBadArguments(t *testing.T) {
	repo, _ := filepath.Abs("../../..")
	for name, args := range map[string][]string{
		"bad name":      {"-name", "Shipping!", "-port", "8085"},
		"taken port":    {"-name", "shipping", "-port", "8082"},
		"taken name":    {"-name", "payments", "-port", "8085"},
		"unknown topic": {"-name", "shipping", "-port", "8085", "-topic", "nope.events"},
		"low port":      {"-name", "shipping", "-port", "80"},
	} {
		root := t.TempDir()
		copyFile(t, filepath.Join(repo, "dev.procfile"), filepath.Join(root, "dev.procfile"))
		if err := run(args, root, io.Discard); err == nil {
			t.Errorf("%s: generated", name)
		}
		if _, err := os.Stat(filepath.Join(root, "services", "shipping")); err == nil {
			t.Errorf("%s: wrote files before refusing", name)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from) // #nosec G304 -- a file of this repository
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func goIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...) // #nosec G204 -- fixed go subcommands
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
