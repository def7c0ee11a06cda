package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// EnvUse is what a command does with its environment: every variable
// name its code reads, and those it requires.
type EnvUse struct {
	Reads    map[string]bool
	Required map[string]bool
}

// envReaders are config.Env's methods; their first argument is a name.
var envReaders = map[string]bool{
	"String": true, "Required": true, "Addr": true, "URL": true, "List": true,
	"Int": true, "Duration": true, "LogLevel": true, "Bool": true, "Secret": true, "OptionalAddr": true,
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// ScanEnv reads the source of a command and of every package of this
// repository it imports, and returns the variables the code names: the
// first argument of config.Env's readers and of getenv/os.Getenv calls.
// Names read through the SDKs (OTEL_*, the Go runtime's) are not in
// the code; callers allow them by prefix.
func ScanEnv(root, pkg string) (EnvUse, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}|{{.ImportPath}}{{end}}", pkg) // #nosec G204 -- a package pattern from the tests, run by go list
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return EnvUse{}, fmt.Errorf("go list %s: %w", pkg, err)
	}
	use := EnvUse{Reads: map[string]bool{}, Required: map[string]bool{}}
	fset := token.NewFileSet()
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		dir, path, _ := strings.Cut(line, "|")
		if !strings.HasPrefix(path, "github.com/example/sagasuite/") {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
			if err != nil {
				return EnvUse{}, err
			}
			ast.Inspect(file, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				var fn string
				switch f := call.Fun.(type) {
				case *ast.SelectorExpr:
					fn = f.Sel.Name
				case *ast.Ident:
					fn = f.Name
				}
				if !envReaders[fn] && fn != "getenv" && fn != "Getenv" {
					return true
				}
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				name, err := strconv.Unquote(lit.Value)
				if err != nil || !envName.MatchString(name) {
					return true
				}
				use.Reads[name] = true
				if fn == "Required" || fn == "Secret" {
					use.Required[name] = true
				}
				if fn == "Secret" { // or from the file <name>_FILE names
					use.Reads[name+"_FILE"] = true
				}
				return true
			})
		}
	}
	return use, nil
}
