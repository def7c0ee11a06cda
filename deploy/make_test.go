package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// `make help` (and `make` alone) lists every target of the Makefile with
// its one-line purpose: a target added without one fails here.
func TestMakeHelpListsEveryTarget(t *testing.T) {
	raw, err := os.ReadFile(root + "/Makefile")
	if err != nil {
		t.Fatal(err)
	}
	phony := regexp.MustCompile(`(?m)^\.PHONY:(.*)$`).FindSubmatch(raw)
	if phony == nil {
		t.Fatal("no .PHONY line")
	}
	cmd := exec.Command("make", "--no-print-directory")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	for _, target := range strings.Fields(string(phony[1])) {
		line := regexp.MustCompile(`(?m)^  make ` + regexp.QuoteMeta(target) + `\s+(\S.*)$`).FindSubmatch(out)
		if line == nil || len(line[1]) < 10 {
			t.Errorf("make help does not say what %q does (add \"## what it does\" after the target)\n%s", target, out)
		}
	}
}
