package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestProbePassesOnlyWhenEveryURLAnswers2xx(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database: not reachable", http.StatusServiceUnavailable)
	}))
	defer down.Close()

	if err := run([]string{ok.URL, ok.URL + "/readyz"}, io.Discard); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	if err := run([]string{ok.URL, down.URL}, io.Discard); err == nil {
		t.Fatal("a 503 passed the check")
	}
	if err := run([]string{"-timeout", "1s", "http://127.0.0.1:1/"}, io.Discard); err == nil {
		t.Fatal("a closed port passed the check")
	}
	if err := run(nil, io.Discard); err == nil {
		t.Fatal("no URL passed the check")
	}
}

// -install copies the running binary into a directory, replacing what a
// rebuilt image's older probe left there (compose's probe-init).
func TestInstallReplacesAStaleProbe(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "probe"), []byte("stale"), 0o755); err != nil { // #nosec G306 -- test file
		t.Fatal(err)
	}
	if err := run([]string{"-install", dir}, io.Discard); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	want, _ := os.ReadFile(self) // #nosec G304 -- the test binary
	got, err := os.ReadFile(filepath.Join(dir, "probe"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("installed %d bytes (%v), want the running binary's %d", len(got), err, len(want))
	}
	if fi, _ := os.Stat(filepath.Join(dir, "probe")); fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("installed probe is not executable: %v", fi.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".probe-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
