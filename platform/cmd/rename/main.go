// Command rename gives a copy of this repository its own module path
// (make rename MODULE=github.com/acme/shop): every go.mod, import, template
// and file that names the old path is rewritten, and the Go files changed
// are gofmt'ed (import order can change with the path). Directories stay
// where they are, so go.work, the Makefile and the Dockerfile need no edit.
//
//	rename -module github.com/acme/shop [-dir .]
//
// The old path is read from platform/go.mod. Run it on a fresh copy, then
// make test-short.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rename:", err)
		os.Exit(1)
	}
}

// validPath is a module path a newcomer would choose: a host with a dot,
// then one or more path elements (Go's module path rules, simplified to
// lower-case; see golang.org/x/mod/module.CheckPath for all of them).
var validPath = regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9-]+)+(/[a-z0-9][a-z0-9._-]*)+$`)

// skipDirs are never rewritten: version control, dependencies, build output.
var skipDirs = map[string]bool{".git": true, "node_modules": true, "bin": true, ".dev": true}

func run(args []string, out io.Writer) error {
	fl := flag.NewFlagSet("rename", flag.ContinueOnError)
	to := fl.String("module", "", "the new module path prefix, e.g. github.com/acme/shop")
	dir := fl.String("dir", ".", "the repository's root")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if !validPath.MatchString(*to) || strings.Contains(*to, "..") {
		return fmt.Errorf("MODULE %q: a module path such as github.com/acme/shop (lower-case, a host with a dot, then a path)", *to)
	}
	from, err := current(*dir)
	if err != nil {
		return err
	}
	if from == *to {
		return fmt.Errorf("the module path is %s already", from)
	}
	var changed, formatted int
	err = filepath.WalkDir(*dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDirs[d.Name()] && path != *dir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path) // #nosec G304 G122 -- files of the repository being renamed
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 || !bytes.Contains(b, []byte(from)) {
			return nil // binary, or nothing to rename
		}
		b = rewrite(b, from, *to)
		if strings.HasSuffix(path, ".go") {
			if b, err = format.Source(b); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			formatted++
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		changed++
		return os.WriteFile(path, b, info.Mode().Perm()) // #nosec G122 G703 -- rewriting the repository's own files in place
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "rename: %s → %s in %d files (%d Go files gofmt'ed)\nNext: make test-short\n", from, *to, changed, formatted)
	return nil
}

// current is the module path prefix the repository has now: platform's
// module path without /platform.
func current(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "platform", "go.mod")) // #nosec G304 -- the repository's own go.mod
	if err != nil {
		return "", fmt.Errorf("run from the repository's root: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			if root, ok := strings.CutSuffix(strings.TrimSpace(p), "/platform"); ok {
				return root, nil
			}
		}
	}
	return "", errors.New("platform/go.mod has no module line ending in /platform")
}

// rewrite replaces the module path where it is a whole path prefix: the
// path itself, or followed by "/" (not github.com/x/shopping for
// github.com/x/shop).
func rewrite(b []byte, from, to string) []byte {
	re := regexp.MustCompile(regexp.QuoteMeta(from) + `(/|\b)`)
	return re.ReplaceAll(b, []byte(to+"$1"))
}
