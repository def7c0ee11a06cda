package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/postgrestest"
)

// Every connection of a pool carries the session limits: a statement that
// runs too long, one that waits too long for a lock and a session left idle
// inside a transaction are ended by the server, so nothing of a service
// holds the server (and every projector on it) up for long.
func TestOpenSetsSessionLimits(t *testing.T) {
	admin, name := postgrestest.NewDatabase(t)
	ctx := context.Background()
	pool, err := postgres.Open(ctx, admin, name, observe.Discard(), postgres.Config{StatementTimeout: 300 * time.Millisecond,
		LockTimeout: 100 * time.Millisecond, IdleInTransactionTimeout: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	code := func(err error) string {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			return "not a PostgreSQL error"
		}
		return pgErr.Code
	}
	if _, err := pool.Exec(ctx, `SELECT pg_sleep(2)`); code(err) != "57014" {
		t.Errorf("a 2 s statement: %v, want 57014 query_canceled (statement_timeout)", err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE l (id int PRIMARY KEY); INSERT INTO l VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `SELECT * FROM l FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `UPDATE l SET id = 2`)
	if code(err) != "55P03" {
		t.Errorf("waiting on a held lock: %v, want 55P03 lock_not_available (lock_timeout)", err)
	}
	time.Sleep(time.Second) // the holder idles in its transaction past the limit
	if _, err := holder.Exec(ctx, `SELECT 1`); err == nil {
		t.Error("a session idle in its transaction past the limit is still open")
	}
	_ = holder.Rollback(ctx)
	var v string
	if err := pool.QueryRow(ctx, `SHOW idle_in_transaction_session_timeout`).Scan(&v); err != nil || v != "600ms" {
		t.Errorf("idle_in_transaction_session_timeout %q %v", v, err)
	}
	// The defaults apply when nothing is set.
	def, err := postgres.Open(ctx, admin, name, observe.Discard(), postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	if err := def.QueryRow(ctx, `SELECT current_setting('statement_timeout') || ' ' || current_setting('lock_timeout') || ' ' ||
		current_setting('idle_in_transaction_session_timeout')`).Scan(&v); err != nil || v != "30s 10s 30s" {
		t.Errorf("default limits %q %v, want 30s 10s 30s", v, err)
	}
}

// A malformed DATABASE_URL is reported without its password, by the
// configuration check and by Open alike.
func TestDatabaseURLPasswordsStayOutOfErrors(t *testing.T) {
	for _, bad := range []string{
		"postgres://app:s3cret-pw@db:5432/app?sslmode=disable%zz",
		"postgres://app:s3cret-pw@db:5432/%zz",
		"postgres://app:s3cret-pw@db :5432/app",
	} {
		env := config.New(func(k string) string {
			return map[string]string{"DATABASE_URL": "postgres://app:s3cret-pw@/app", "DEV_MODE": "1"}[k]
		})
		postgres.FromEnv(env, "orders")
		_, openErr := postgres.Open(context.Background(), bad, "orders", observe.Discard(), postgres.Config{})
		for _, err := range []error{env.Err(), openErr} {
			if err == nil {
				t.Fatalf("%q: no error", bad)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("the password is in %q", err)
			}
		}
	}
}
