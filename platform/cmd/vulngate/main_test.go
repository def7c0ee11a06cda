package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// govulncheck's JSON for one reachable finding (trace reaching a
// function), one in an imported package only, and their advisories.
const scan = `{"config":{"scanner_name":"govulncheck"}}
{"osv":{"id":"GO-2026-0001","summary":"reached"}}
{"osv":{"id":"GO-2026-0002","summary":"imported only"}}
{"finding":{"osv":"GO-2026-0001","fixed_version":"v1.2.3","trace":[{"module":"example.com/m","version":"v1.2.0","function":"Parse"}]}}
{"finding":{"osv":"GO-2026-0002","trace":[{"module":"example.com/n","version":"v0.1.0","package":"example.com/n"}]}}
`

// A reachable finding fails unless accepted with a reason; one that is
// only imported does not count; an accepted one no longer found is
// reported stale.
func TestOnlyAcceptedReachableFindingsPass(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "accepted.txt")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var out bytes.Buffer
	if err := run(strings.NewReader(scan), write("# nothing accepted\n"), &out); err == nil || !strings.Contains(err.Error(), "GO-2026-0001") ||
		strings.Contains(err.Error(), "GO-2026-0002") {
		t.Fatalf("nothing accepted: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(strings.NewReader(scan), write("GO-2026-0001 we never call Parse on input\nGO-2026-0009 fixed long ago\n"), &out); err != nil {
		t.Fatalf("accepted: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "because: we never call Parse on input") || !strings.Contains(out.String(), "stale: GO-2026-0009") {
		t.Fatalf("the accepted finding or the stale line is not reported:\n%s", out.String())
	}
	if err := run(strings.NewReader(scan), write("GO-2026-0001\n"), &out); err == nil {
		t.Fatal("an acceptance without a reason passed")
	}
	if err := run(strings.NewReader(""), write(""), &out); err == nil {
		t.Fatal("no govulncheck output passed")
	}
}
