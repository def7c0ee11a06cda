package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/config"
)

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	vars := map[string]string{"A": "nope", "B": "-1s", "C": "x", "D": ":80", "E": "ftp://h", "F": " , "}
	env := config.New(func(k string) string { return vars[k] })
	env.Addr("A", "")
	env.Duration("B", time.Second)
	env.Int("C", 1, 0, 10)
	env.Addr("D", "")
	env.URL("E", "", "http")
	env.List("F", "")
	env.Required("G")
	env.Secret("H", "dev-default")
	err := env.Err()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, name := range []string{"A:", "B:", "C:", "E:", "F:", "G:", "H:"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "D:") {
		t.Errorf("valid D reported: %v", err)
	}
}

func TestDefaultsAndValues(t *testing.T) {
	vars := map[string]string{"N": "7", "L": "a, b,,c", "U": "http://h:1"}
	env := config.New(func(k string) string { return vars[k] })
	if got := env.Int("N", 1, 0, 10); got != 7 {
		t.Errorf("N = %d", got)
	}
	if got := env.Duration("X", 3*time.Second); got != 3*time.Second {
		t.Errorf("X = %v", got)
	}
	if got := env.List("L", ""); strings.Join(got, "|") != "a|b|c" {
		t.Errorf("L = %v", got)
	}
	if got := env.URL("U", "", "http"); got != "http://h:1" {
		t.Errorf("U = %v", got)
	}
	if err := env.Err(); err != nil {
		t.Fatal(err)
	}
}

// A secret has a default only in development mode.
func TestSecretsHaveNoDefaultOutsideDevMode(t *testing.T) {
	prod := config.New(func(string) string { return "" })
	if v := prod.Secret("ADMIN_TOKEN", "dev-admin-token"); v != "" || prod.Err() == nil || !strings.Contains(prod.Err().Error(), "ADMIN_TOKEN") {
		t.Errorf("without DEV_MODE: %q, %v", v, prod.Err())
	}
	dev := config.New(func(k string) string { return map[string]string{"DEV_MODE": "1"}[k] })
	if v := dev.Secret("ADMIN_TOKEN", "dev-admin-token"); v != "dev-admin-token" || dev.Err() != nil || !dev.DevMode() {
		t.Errorf("with DEV_MODE=1: %q, %v", v, dev.Err())
	}
	given := config.New(func(k string) string { return map[string]string{"ADMIN_TOKEN": "s3cret"}[k] })
	if v := given.Secret("ADMIN_TOKEN", "dev-admin-token"); v != "s3cret" || given.Err() != nil {
		t.Errorf("given: %q, %v", v, given.Err())
	}
	bad := config.New(func(k string) string { return map[string]string{"DEV_MODE": "yes please"}[k] })
	if bad.Err() == nil {
		t.Error("a DEV_MODE that is neither 1 nor 0 passed")
	}
	if addr := prod.OptionalAddr("ADMIN_ADDR"); addr != "" {
		t.Errorf("unset ADMIN_ADDR = %q", addr)
	}
}

// A secret may come from a file (ADMIN_TOKEN_FILE), as compose and
// Kubernetes mount them; the variable itself wins; a file that holds
// nothing is a problem, not an empty secret.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
		ok   bool
	}{
		{map[string]string{"ADMIN_TOKEN_FILE": file}, "from-file", true},
		{map[string]string{"ADMIN_TOKEN_FILE": file, "ADMIN_TOKEN": "given"}, "given", true},
		{map[string]string{"ADMIN_TOKEN_FILE": empty, "DEV_MODE": "1"}, "", false},
		{map[string]string{"ADMIN_TOKEN_FILE": filepath.Join(dir, "missing"), "DEV_MODE": "1"}, "", false},
	} {
		env := config.New(func(k string) string { return tt.env[k] })
		if got := env.Secret("ADMIN_TOKEN", "dev-admin-token"); got != tt.want || (env.Err() == nil) != tt.ok {
			t.Errorf("%v: %q, %v; want %q", tt.env, got, env.Err(), tt.want)
		}
	}
}
