// Package postgrestest gives integration tests a real PostgreSQL server
// and a fresh database on it per test.
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// LocalURL is the server `make dev` uses, tried when nothing else is set.
const LocalURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL returns a URL of a server t may create databases on:
// TEST_DATABASE_URL when set (make test points it at a container when
// Docker answers, platform/cmd/testdeps), else the local server at LocalURL
// if it answers. With
// none of them the test fails and says how to provide one.
func AdminURL(t testing.TB) string {
	t.Helper()
	u, err := Server()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Server is AdminURL for code without a testing.TB (TestMain).
func Server() (string, error) {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, LocalURL)
	if err != nil {
		return "", fmt.Errorf("no PostgreSQL for tests: set TEST_DATABASE_URL to a server the tests may create databases on "+
			"(for example %s), or run make test with a Docker engine (testcontainers). Tried %s: %w", LocalURL, LocalURL, err)
	}
	_ = conn.Close(ctx)
	return LocalURL, nil
}

// NewDatabase returns a fresh database name on the server, dropped when t
// ends, and the server's admin URL.
func NewDatabase(t testing.TB) (adminURL, name string) {
	t.Helper()
	adminURL = AdminURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name = "test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return adminURL, name
}

// DatabaseURL returns adminURL pointed at database name.
func DatabaseURL(t testing.TB, adminURL, name string) string {
	t.Helper()
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("parse %q: %v", adminURL, err)
	}
	u.Path = "/" + name
	return u.String()
}
