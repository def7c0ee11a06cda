package deploy

import (
	"maps"
	"slices"
	"sync"
	"testing"
)

// scanned caches each binary's scan for the test run (compose and
// Kubernetes check the same binaries).
var (
	scanMu  sync.Mutex
	scanned = map[string]EnvUse{}
)

// checkEnv reports the variables given that the command's binary never reads
// (a misspelt name would be silently ignored; SDK and Go runtime variables
// and names used only inside other values' $(NAME) are allowed), and the
// variables the binary requires that are not given.
func checkEnv(t *testing.T, where string, command []string, given map[string]string, expandedOnly map[string]bool) {
	t.Helper()
	if len(command) == 0 || binaries[command[0]] == "" {
		t.Errorf("%s runs %v: not one of the image's commands %v", where, command, slices.Sorted(maps.Keys(binaries)))
		return
	}
	pkg := binaries[command[0]]
	scanMu.Lock()
	use, ok := scanned[pkg]
	if !ok {
		var err error
		if use, err = ScanEnv(root, pkg); err != nil {
			scanMu.Unlock()
			t.Fatal(err)
		}
		scanned[pkg] = use
	}
	scanMu.Unlock()
	for v := range given {
		if !use.Reads[v] && !sdkEnv(v) && !expandedOnly[v] {
			t.Errorf("%s: gives %s, which %s never reads", where, v, pkg)
		}
	}
	for v := range use.Required {
		if given[v] == "" && given[v+"_FILE"] == "" {
			t.Errorf("%s: %s requires %s, which is not given", where, pkg, v)
		}
	}
}
