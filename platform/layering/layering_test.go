package layering

import (
	"os"
	"path/filepath"
	"testing"
)

// A package that imports a driver, or an adapter of its service, fails
// the check; one that does not passes.
func TestCheck(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/svc\n\ngo 1.26.0\n")
	write("internal/db/db.go", "package db\n\nconst X = 1\n")
	write("internal/app/app.go", "package app\n\nimport \"example.com/svc/internal/db\"\n\nvar _ = db.X\n")
	write("internal/clean/clean.go", "package clean\n\nimport \"net/http\"\n\nvar _ = http.MethodGet\n")
	write("internal/good/good.go", "package good\n\nimport \"strings\"\n\nvar _ = strings.ToUpper\n")
	t.Setenv("GOWORK", "off")
	t.Chdir(root)

	for dir, wantFail := range map[string]bool{"./internal/app": true, "./internal/clean": true, "./internal/good": false} {
		ft := &recorder{TB: t}
		Check(ft, dir, "db")
		if ft.failed != wantFail {
			t.Errorf("%s: failed=%v, want %v", dir, ft.failed, wantFail)
		}
	}
}

// recorder is t, except that failures are noted instead of failing t.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.TB.Logf("(expected) "+format, args...)
}

func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }
