package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/observe"
)

// Config tunes [Open]. The zero value is valid.
type Config struct {
	// MaxConns caps the pool; 0 keeps pgxpool's default (max(4, GOMAXPROCS)).
	MaxConns int32
	// Session limits set on every connection, so that nothing of this
	// service can hold the server up for long: StatementTimeout ends a
	// statement that runs longer (0 means 30 s), LockTimeout one that
	// waits longer for a lock (0 means 10 s), IdleInTransactionTimeout a
	// session left idle inside a transaction (0 means 30 s), which would
	// hold its row locks and, since transaction ids are cluster-wide,
	// hold back every projector on the server (eventstore.ReadAll).
	StatementTimeout, LockTimeout, IdleInTransactionTimeout time.Duration
}

// sessionLimits are the runtime parameters of cfg's session limits.
func (cfg Config) sessionLimits() map[string]string {
	or := func(d, def time.Duration) string { return strconv.FormatInt(cmp.Or(d, def).Milliseconds(), 10) }
	return map[string]string{
		"statement_timeout":                   or(cfg.StatementTimeout, 30*time.Second),
		"lock_timeout":                        or(cfg.LockTimeout, 10*time.Second),
		"idle_in_transaction_session_timeout": or(cfg.IdleInTransactionTimeout, 30*time.Second),
	}
}

var dbName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to database name on the server that adminURL points at,
// creating the database first if it does not exist yet. adminURL's own
// database is used only for that check. Every query is traced, and
// query durations and the pool's state are measured, through tel.
func Open(ctx context.Context, adminURL, name string, tel observe.Bundle, cfg Config) (*pgxpool.Pool, error) {
	if !dbName.MatchString(name) {
		return nil, fmt.Errorf("database name %q: want lower-case letters, digits and _", name)
	}
	if err := tel.For("database " + name); err != nil {
		return nil, err
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		// url.Error repeats the URL, password and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("parse database url %s: %w", config.RedactURL(adminURL), err)
	}
	if err := ensureDatabase(ctx, adminURL, name); err != nil {
		return nil, err
	}
	u.Path = "/" + name
	pcfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	// Open a share of the pool at start, and keep it open: the first
	// requests after readiness must not each pay for a new connection.
	pcfg.MinConns = max(1, pcfg.MaxConns/4)
	for k, v := range cfg.sessionLimits() {
		pcfg.ConnConfig.RuntimeParams[k] = v
	}
	tracer, err := newPoolTracer(tel.TracerProvider, tel.MeterProvider, name)
	if err != nil {
		return nil, fmt.Errorf("pool metrics: %w", err)
	}
	pcfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s: %w", name, err)
	}
	if err := observePool(tel.MeterProvider, pool, tracer, name); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pool metrics: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s: %w", name, err)
	}
	return pool, nil
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to database server: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	// CREATE DATABASE takes no parameters; name was checked against dbName.
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil // another replica created it first
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Migrate applies the goose migrations in fsys (SQL files at its root),
// recording them in the table goose_<set>. Giving every set its own table
// lets a platform package ship its schema beside its code while the service
// keeps its own numbering. Replicas starting together are serialised by an
// advisory lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool, set string, fsys fs.FS) error {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrate %s: %w", set, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName("goose_"+strings.ReplaceAll(set, "-", "_")),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", set, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", set, err)
	}
	return nil
}

// Dir returns directory dir of fsys, for the migrations a package embeds
// with //go:embed dir/*.sql. It panics on an invalid dir name: the path is
// fixed at compile time, so that is a programming error.
func Dir(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// IsUniqueViolation reports whether err is PostgreSQL's unique_violation,
// optionally on the named constraint (empty matches any).
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
}

// IsDataError reports whether err is PostgreSQL refusing the data itself:
// a data exception (SQLSTATE class 22: a value out of a column's range,
// text that is not valid in the encoding) or an integrity constraint
// violation (class 23: a duplicate key, a check). Running the same
// statement with the same data again will most likely fail again.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23"))
}
