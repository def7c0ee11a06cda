package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/sagasuite/platform/tlsfiles"
)

// The first run generates and prints a token; later runs keep it and do
// not print it; a given ADMIN_TOKEN replaces it.
func TestGeneratedOnceThenKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "admin-token")
	none := func(string) string { return "" }
	var out bytes.Buffer
	if err := run([]string{"-token", path}, none, &out); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(first))
	if len(token) != 48 || !strings.Contains(out.String(), token) {
		t.Fatalf("first run: file %q, printed %q", first, out.String())
	}
	out.Reset()
	if err := run([]string{"-token", path}, none, &out); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) || strings.Contains(out.String(), token) {
		t.Fatalf("second run: file %q, printed %q; want it kept and not printed", again, out.String())
	}
	given := func(k string) string { return map[string]string{"ADMIN_TOKEN": "chosen"}[k] }
	if err := run([]string{"-token", path}, given, &out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "chosen\n" {
		t.Fatalf("given: %q", b)
	}
}

// The TLS set: a CA and psp's certificate that a client trusting the CA
// accepts for psp's names; kept on the next run.
func TestCertificatesIssuedOnceThenKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	var out bytes.Buffer
	if err := run([]string{"-tls", dir, "-hosts", "psp,localhost"}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if _, err := tlsfiles.Server(filepath.Join(dir, "psp.pem"), filepath.Join(dir, "psp-key.pem")); err != nil {
		t.Fatalf("psp's certificate and key: %v", err)
	}
	if _, err := tlsfiles.Client(filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatalf("the CA: %v", err)
	}
	if err := run([]string{"-tls", dir}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); string(again) != string(ca) {
		t.Fatal("the CA was replaced")
	}
}
