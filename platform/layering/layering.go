// Package layering checks, in a service's tests, that its application
// layer (internal/app) stays inside its boundary: it imports no database
// driver, HTTP or Kafka library, and none of the service's adapters, even
// indirectly. Adapters depend on app, never the other way round. Every
// service's app package calls Check from a test, so the rule is the same
// everywhere and a new service gets it from the template.
package layering

import (
	"os/exec"
	"path"
	"strings"
	"testing"
)

// Libraries no application layer imports directly: they belong to the
// adapters. (Platform types an app names in its ports, such as
// outbox.Message, bring their drivers along indirectly; those are not
// app's to call.)
var libraries = []string{"github.com/jackc/pgx", "github.com/labstack/echo", "github.com/segmentio/kafka-go", "net/http"}

// Check fails t when the package in dir (a service's internal/app) imports
// one of the adapter libraries, or depends, directly or not, on one of
// adapters: package names under the same internal/ directory, such as
// "ordersdb" or "httpapi".
func Check(t testing.TB, dir string, adapters ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\n{{join .Imports \" \"}}", dir).Output() // #nosec G204 -- the go command on a package directory of the test
	if err != nil {
		t.Fatalf("go list %s: %v", dir, err)
		return
	}
	self, imports, _ := strings.Cut(string(out), "\n")
	for _, imp := range strings.Fields(imports) {
		for _, lib := range libraries {
			if imp == lib || strings.HasPrefix(imp, lib+"/") {
				t.Errorf("%s imports %s, an adapter's library", self, imp)
			}
		}
	}
	internal := path.Dir(self)
	if path.Base(internal) != "internal" {
		t.Fatalf("%s is not directly under a service's internal/", self)
		return
	}
	deps, err := exec.Command("go", "list", "-deps", dir).Output() // #nosec G204 -- the go command on a package directory of the test
	if err != nil {
		t.Fatalf("go list -deps %s: %v", dir, err)
		return
	}
	for _, dep := range strings.Fields(string(deps)) {
		for _, a := range adapters {
			if p := internal + "/" + a; dep == p || strings.HasPrefix(dep, p+"/") {
				t.Errorf("%s depends on the adapter %s", self, dep)
			}
		}
	}
}
