package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const oldPath = "github.com/example/sagasuite"

// Paths are replaced whole: imports, go.mod lines, templates, scope names;
// a longer name that merely starts with the path is left alone, and import
// blocks stay gofmt-sorted.
func TestRewritesWholePaths(t *testing.T) {
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
	write("platform/go.mod", "module "+oldPath+"/platform\n\ngo 1.26.0\n")
	write("services/a/main.go", "package main\n\nimport (\n\t\"fmt\"\n\n\t\""+oldPath+"/platform/x\"\n\t\"github.com/example/zzz\"\n)\n\nvar _ = fmt.Sprint(x.A, zzz.B, \""+oldPath+"suffix\")\n")
	write("t/go.mod.tmpl", "require "+oldPath+"/platform v0.0.0\n")
	write("node_modules/x.js", oldPath)
	if err := run([]string{"-module", "example.org/acme/shop", "-dir", root}, io.Discard); err != nil {
		t.Fatal(err)
	}
	read := func(rel string) string {
		b, _ := os.ReadFile(filepath.Join(root, rel))
		return string(b)
	}
	if got := read("platform/go.mod"); got != "module example.org/acme/shop/platform\n\ngo 1.26.0\n" {
		t.Errorf("go.mod: %q", got)
	}
	want := "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.org/acme/shop/platform/x\"\n\t\"github.com/example/zzz\"\n)\n\nvar _ = fmt.Sprint(x.A, zzz.B, \"" + oldPath + "suffix\")\n"
	if got := read("services/a/main.go"); got != want {
		t.Errorf("main.go:\n%s\nwant\n%s", got, want)
	}
	if got := read("t/go.mod.tmpl"); got != "require example.org/acme/shop/platform v0.0.0\n" {
		t.Errorf("template: %q", got)
	}
	if got := read("node_modules/x.js"); got != oldPath {
		t.Errorf("node_modules rewritten: %q", got)
	}
	for _, bad := range []string{"Acme/Shop", "shop", "github.com/acme/../x", ""} {
		if err := run([]string{"-module", bad, "-dir", root}, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A copy of this repository, renamed, names the old path nowhere, and
// every module of it builds, vets and passes its short tests: what
// README's "Copy it as a template" promises.
func TestARenamedCopyBuildsAndPassesItsShortTests(t *testing.T) {
	if testing.Short() {
		t.Skip("copies the repository and builds it under a new module path")
	}
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := exec.Command("git", "-C", repo, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	copyRoot := t.TempDir()
	for _, rel := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		src := filepath.Join(repo, rel)
		info, err := os.Lstat(src)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the working tree, or a link
		}
		b, err := os.ReadFile(src) // #nosec G304 -- the repository's own files
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(copyRoot, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := run([]string{"-module", "github.com/acme/shop", "-dir", copyRoot}, &out); err != nil {
		t.Fatal(err)
	}
	t.Log(strings.TrimSpace(out.String()))
	if left, _ := exec.Command("grep", "-rl", "--exclude-dir=node_modules", oldPath, copyRoot).Output(); len(left) > 0 {
		t.Errorf("files still name %s:\n%s", oldPath, left)
	}
	// The copy's own workspace and Makefile, as a user runs them.
	cmd := exec.Command("make", "--no-print-directory", "modules", "test-short")
	cmd.Dir = copyRoot
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(copyRoot, "go.work"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make modules test-short in the renamed copy: %v\n%s", err, tail(b, 4000))
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
