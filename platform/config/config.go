// Package config reads a service's settings from its environment and
// reports every problem at once, so a misconfigured deployment is fixed in
// one round rather than one variable at a time.
//
//	env := config.New(getenv)
//	addr := env.String("HTTP_ADDR", ":8081")
//	timeout := env.Duration("SAGA_TIMEOUT", 30*time.Second)
//	if err := env.Err(); err != nil { ... }
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Env reads variables through getenv and collects problems.
type Env struct {
	getenv func(string) string
	dev    bool
	errs   []error
}

// New returns an Env over getenv (os.Getenv in main, a map in tests).
// DEV_MODE=1 (or true) turns on development mode, in which Secret falls
// back to a development default; `make dev` and the tests set it.
func New(getenv func(string) string) *Env {
	e := &Env{getenv: getenv}
	switch v := strings.ToLower(strings.TrimSpace(getenv("DEV_MODE"))); v {
	case "", "0", "false":
	case "1", "true":
		e.dev = true
	default:
		e.Fail("DEV_MODE", "%q: want 1 or 0", v)
	}
	return e
}

// DevMode reports whether DEV_MODE is on.
func (e *Env) DevMode() bool { return e.dev }

// Err returns every problem found so far, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Fail records a problem found by the caller's own checks.
func (e *Env) Fail(name, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

func (e *Env) raw(name, def string) string {
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		return v
	}
	return def
}

// String returns the variable, or def when it is unset or blank.
func (e *Env) String(name, def string) string { return e.raw(name, def) }

// Required returns the variable and records a problem when it is empty.
func (e *Env) Required(name string) string {
	v := e.raw(name, "")
	if v == "" {
		e.Fail(name, "is required")
	}
	return v
}

// Secret is a required secret (a token, a password): the variable, or
// else the contents of the file <name>_FILE names (compose and Kubernetes
// mount secrets as files; the value then never shows in the process's
// environment). Only in development mode does it fall back to
// devDefault, so a deployment that forgets it refuses to start instead of
// running with a value everyone knows.
func (e *Env) Secret(name, devDefault string) string {
	v := e.raw(name, "")
	if file := e.raw(name+"_FILE", ""); v == "" && file != "" {
		b, err := os.ReadFile(file) // #nosec G304 -- the operator names the file
		if v = strings.TrimSpace(string(b)); err != nil || v == "" {
			e.Fail(name+"_FILE", "%s holds no secret (%v)", file, err)
			return ""
		}
	}
	switch {
	case v != "":
		return v
	case e.dev:
		return devDefault
	}
	e.Fail(name, "is required (a secret, or %s_FILE naming a file that holds it; DEV_MODE=1 gives it a development default, for local runs only)", name)
	return ""
}

// OptionalAddr returns a listen address, or "" when the variable is unset.
func (e *Env) OptionalAddr(name string) string {
	if e.raw(name, "") == "" {
		return ""
	}
	return e.Addr(name, "")
}

// Addr returns a listen address such as ":8081" or "127.0.0.1:8081".
func (e *Env) Addr(name, def string) string {
	v := e.raw(name, def)
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		e.Fail(name, "%q is not host:port", v)
	}
	return v
}

// URL returns an absolute URL with one of the schemes.
// A problem names the URL with its password (if any) redacted: a
// DATABASE_URL's password must not reach the logs of a failed start.
func (e *Env) URL(name, def string, schemes ...string) string {
	v := e.raw(name, def)
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		e.Fail(name, "%q is not an absolute URL", RedactURL(v))
		return v
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	e.Fail(name, "scheme %q, want one of %v", u.Scheme, schemes)
	return v
}

// List returns a comma-separated list, trimmed, empties dropped; a problem
// when it ends up empty.
func (e *Env) List(name, def string) []string {
	var out []string
	for _, s := range strings.Split(e.raw(name, def), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		e.Fail(name, "is empty")
	}
	return out
}

// Int returns an integer in [lo, hi].
func (e *Env) Int(name string, def, lo, hi int) int {
	v := e.raw(name, strconv.Itoa(def))
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.Fail(name, "%q is not an integer in [%d, %d]", v, lo, hi)
		return def
	}
	return n
}

// Duration returns a positive Go duration ("30s", "500ms").
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := e.raw(name, def.String())
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.Fail(name, "%q is not a positive duration such as 30s", v)
		return def
	}
	return d
}

// LogLevel returns debug, info, warn or error.
func (e *Env) LogLevel(name string) slog.Level {
	var l slog.Level
	v := e.raw(name, "info")
	if err := l.UnmarshalText([]byte(v)); err != nil {
		e.Fail(name, "%q is not one of debug, info, warn, error", v)
	}
	return l
}

// userinfo is the "user:password@" of a URL-like string that url.Parse
// may refuse (a stray space, a bad escape).
var userinfo = regexp.MustCompile(`(://[^/@:]*):[^/@]*@`)

// RedactURL returns s with the password of its user info replaced by
// "xxxxx", whether or not s parses as a URL: it is what error messages
// and logs may show of a connection URL.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return userinfo.ReplaceAllString(s, "$1:xxxxx@")
}
