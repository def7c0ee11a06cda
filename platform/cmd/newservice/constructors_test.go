package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// One constructor shape, in the platform and every service
// (docs/architecture.md, "Dependency rules"): a component that reports takes
// the telemetry bundle, observe.Bundle, as a parameter right before its
// Config (or last), and returns an error so that a bundle missing a
// provider stops the start; no Config or Settings struct carries a
// provider, meter or logger of its own, which would be a second way to
// wire telemetry and a silent no-op when forgotten.
func TestOneConstructorShape(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	reporting := map[string]bool{"MeterProvider": true, "TracerProvider": true, "Meter": true, "Tracer": true, "Logger": true}
	checked := 0
	for _, top := range []string{"platform", "services"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
				strings.Contains(filepath.ToSlash(path), "/template/") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			for _, decl := range f.Decls {
				switch decl := decl.(type) {
				case *ast.GenDecl:
					for _, spec := range decl.Specs {
						ts, ok := spec.(*ast.TypeSpec)
						if !ok {
							continue
						}
						st, isStruct := ts.Type.(*ast.StructType)
						if !isStruct || !(strings.HasSuffix(ts.Name.Name, "Config") || strings.HasSuffix(ts.Name.Name, "Settings")) {
							continue
						}
						for _, field := range st.Fields.List {
							if name := typeName(field.Type); reporting[name] {
								t.Errorf("%s: %s has a field of type %s: pass observe.Bundle to its constructor instead", rel, ts.Name.Name, name)
							}
						}
					}
				case *ast.FuncDecl:
					params := decl.Type.Params.List
					for i, p := range params {
						if typeName(p.Type) != "Bundle" || len(p.Names) != 1 {
							continue
						}
						checked++
						if rest := params[i+1:]; len(rest) > 1 || len(rest) == 1 && !isConfigLike(rest[0].Type) {
							t.Errorf("%s: %s takes %s before other dependencies: the bundle comes right before the Config, or last",
								rel, decl.Name.Name, p.Names[0].Name)
						}
						if decl.Recv == nil && strings.HasPrefix(decl.Name.Name, "New") || decl.Name.Name == "Setup" {
							res := decl.Type.Results
							if res == nil || typeName(res.List[len(res.List)-1].Type) != "error" {
								t.Errorf("%s: %s takes a bundle but returns no error to refuse an incomplete one", rel, decl.Name.Name)
							}
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 25 {
		t.Fatalf("only %d functions take an observe.Bundle: is the walk looking at the right tree?", checked)
	}
}

// typeName is the bare name of a parameter's or field's type: Bundle for
// observe.Bundle, Logger for *slog.Logger.
func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return typeName(e.X)
	case *ast.SelectorExpr:
		return e.Sel.Name
	case *ast.Ident:
		return e.Name
	case *ast.Ellipsis:
		return typeName(e.Elt)
	}
	return ""
}

// isConfigLike reports whether a parameter after the bundle is settings
// (a Config or Settings struct, a main's settings, a duration) or a
// variadic list (topics, probes).
func isConfigLike(e ast.Expr) bool {
	if _, ok := e.(*ast.Ellipsis); ok {
		return true
	}
	n := strings.ToLower(typeName(e))
	return strings.HasSuffix(n, "config") || strings.HasSuffix(n, "settings") || n == "duration"
}
