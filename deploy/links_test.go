package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The repository stands alone: every Markdown link, every Markdown file a
// text names, and every repository path a Markdown page
// quotes in backticks (`platform/outbox/`, `services/*/internal/saga/`)
// resolves inside it. A renamed package or a moved page then fails here
// instead of leaving a reader at a dead end.
func TestEveryReferenceResolves(t *testing.T) {
	top, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	skipDirs := map[string]bool{".git": true, "node_modules": true, "bin": true, ".dev": true, "html": true}
	mdLink := regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	mdName := regexp.MustCompile(`[A-Za-z0-9_./-]*[A-Za-z0-9_]\.md\b`)
	quoted := regexp.MustCompile("`((?:platform|services|docs|api|deploy|dashboards|loadtest|e2e|prometheus|\\.github)/[^`\\s]*)`")
	code := regexp.MustCompile("(?s)```.*?```|`[^`\n]*`") // links inside code are code
	texts := map[string]bool{".go": true, ".md": true, ".yaml": true, ".yml": true, ".js": true, ".mjs": true, ".tmpl": true, ".sh": true}

	exists := func(from, ref string) bool {
		ref, _, _ = strings.Cut(ref, "#")
		if ref == "" {
			return true
		}
		var candidates []string
		if strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") {
			candidates = []string{filepath.Join(filepath.Dir(from), ref)}
		} else {
			candidates = []string{filepath.Join(top, ref), filepath.Join(filepath.Dir(from), ref)}
		}
		for _, c := range candidates {
			if strings.HasSuffix(from, ".tmpl") { // a template names files as they will be once generated
				if _, err := os.Stat(c + ".tmpl"); err == nil {
					return true
				}
			}
			if strings.ContainsAny(c, "*?[") {
				if m, _ := filepath.Glob(c); len(m) > 0 {
					return true
				}
				continue
			}
			if _, err := os.Stat(c); err == nil {
				return true
			}
		}
		return false
	}

	// What .gitignore anchors at the root is generated (api/html/, bin/):
	// a page may name it though a fresh clone does not have it yet.
	var generated []string
	if gi, err := os.ReadFile(filepath.Join(top, ".gitignore")); err == nil {
		for _, l := range strings.Split(string(gi), "\n") {
			if strings.HasPrefix(l, "/") {
				generated = append(generated, strings.TrimPrefix(l, "/"))
			}
		}
	}
	isGenerated := func(ref string) bool {
		for _, g := range generated {
			if strings.HasPrefix(ref, g) || strings.HasPrefix(ref+"/", g) {
				return true
			}
		}
		return false
	}

	checked := 0
	err = filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDirs[d.Name()] && path != top {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if !texts[filepath.Ext(name)] && name != "Makefile" && name != "Dockerfile" {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := string(raw)
		rel, _ := filepath.Rel(top, path)
		var refs []string
		if strings.HasSuffix(name, ".md") {
			for _, m := range mdLink.FindAllStringSubmatch(code.ReplaceAllString(text, ""), -1) {
				if target := m[1]; !strings.Contains(target, "://") && !strings.HasPrefix(target, "mailto:") {
					refs = append(refs, target)
				}
			}
			for _, m := range quoted.FindAllStringSubmatch(text, -1) {
				p := strings.TrimRight(m[1], ".,;:")
				if !strings.ContainsAny(p, "<{…$") {
					refs = append(refs, p)
				}
			}
		}
		for _, loc := range mdName.FindAllStringIndex(text, -1) {
			if loc[0] > 0 && strings.ContainsRune("<>{}", rune(text[loc[0]-1])) {
				continue // part of a placeholder: services/<name>/EVENTS.md
			}
			refs = append(refs, text[loc[0]:loc[1]])
		}
		for _, ref := range refs {
			checked++
			if !exists(path, ref) && !isGenerated(ref) {
				t.Errorf("%s names %s, which is not in the repository", rel, ref)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 200 {
		t.Errorf("only %d references checked: the patterns no longer find them", checked)
	}
	t.Logf("%d references checked", checked)
}
