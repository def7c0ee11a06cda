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
	root := t.TempDir()
	copyFile(t, filepath.Join(repo, "dev.procfile"), filepath.Join(root, "dev.procfile"))
	// The workspace: this repository's modules where they are, and the
	// new service in root.
	work := "go 1.26.8\n\nuse (\n"
	for _, m := range []string{"platform", "services/orders", "services/payments", "services/inventory"} {
		work += "\t" + filepath.Join(repo, m) + "\n"
	}
	work += ")\n"
	if err := os.WriteFile(filepath.Join(root, "go.work"), []byte(work), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOWORK", filepath.Join(root, "go.work"))
	copyFile(t, filepath.Join(repo, "go.work.sum"), filepath.Join(root, "go.work.sum"))
	// The producer's module files, which the service's go.mod starts from.
	if err := os.MkdirAll(filepath.Join(root, "services", "payments"), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		copyFile(t, filepath.Join(repo, "services", "payments", f), filepath.Join(root, "services", "payments", f))
	}

	if err := run([]string{"-name", "shipping", "-port", "8085", "-topic", "payments.events"}, root, io.Discard); err != nil {
		t.Fatal(err)
	}
	proc, _ := os.ReadFile(filepath.Join(root, "dev.procfile"))
	if !strings.Contains(string(proc), "shipping: HTTP_ADDR=:8085 INSTANCE_ID=shipping-1 exec bin/shipping\n"+marker) {
		t.Errorf("dev.procfile has no shipping line above the marker:\n%s", proc)
	}
	if w, _ := os.ReadFile(filepath.Join(root, "go.work")); !strings.Contains(string(w), "./services/shipping") {
		t.Errorf("go.work does not use the service:\n%s", w)
	}

	svc := filepath.Join(root, "services", "shipping")
	// Its go.mod points at its neighbours with relative paths, right in
	// the repository; here they are elsewhere.
	for _, m := range []string{"platform", "services/orders", "services/payments", "services/inventory"} {
		goIn(t, svc, "mod", "edit", "-replace=github.com/example/sagasuite/"+m+"="+filepath.Join(repo, m))
	}
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
