package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The first run generates and prints a token; later runs keep it and do
// not print it; a given ADMIN_TOKEN replaces it.
func TestGeneratedOnceThenKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "admin-token")
	none := func(string) string { return "" }
	var out bytes.Buffer
	if err := run([]string{path}, none, &out); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(first))
	if len(token) != 48 || !strings.Contains(out.String(), token) {
		t.Fatalf("first run: file %q, printed %q", first, out.String())
	}
	out.Reset()
	if err := run([]string{path}, none, &out); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) || strings.Contains(out.String(), token) {
		t.Fatalf("second run: file %q, printed %q; want it kept and not printed", again, out.String())
	}
	given := func(k string) string { return map[string]string{"ADMIN_TOKEN": "chosen"}[k] }
	if err := run([]string{path}, given, &out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "chosen\n" {
		t.Fatalf("given: %q", b)
	}
}
