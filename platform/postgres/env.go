package postgres

import (
	"time"

	"github.com/example/sagasuite/platform/config"
)

// DefaultURL is the local server `make dev` uses.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Settings say which database a service owns.
type Settings struct {
	URL      string // the server's admin URL (DATABASE_URL)
	Name     string // the service's own database (DATABASE_NAME), created if missing
	MaxConns int    // DB_MAX_CONNS
	// Session limits (Config): DB_STATEMENT_TIMEOUT, DB_LOCK_TIMEOUT,
	// DB_IDLE_IN_TRANSACTION_TIMEOUT.
	StatementTimeout, LockTimeout, IdleInTransactionTimeout time.Duration
}

// FromEnv reads DATABASE_URL, DATABASE_NAME (default: the service's
// name), DB_MAX_CONNS (default 20) and the session limits
// DB_STATEMENT_TIMEOUT (30s), DB_LOCK_TIMEOUT (10s) and
// DB_IDLE_IN_TRANSACTION_TIMEOUT (30s).
func FromEnv(env *config.Env, service string) Settings {
	return Settings{
		URL:      env.URL("DATABASE_URL", DefaultURL, "postgres", "postgresql"),
		Name:     env.String("DATABASE_NAME", service),
		MaxConns: env.Int("DB_MAX_CONNS", 20, 2, 1000),

		StatementTimeout:         env.Duration("DB_STATEMENT_TIMEOUT", 30*time.Second),
		LockTimeout:              env.Duration("DB_LOCK_TIMEOUT", 10*time.Second),
		IdleInTransactionTimeout: env.Duration("DB_IDLE_IN_TRANSACTION_TIMEOUT", 30*time.Second),
	}
}

// Config of these settings, with cfg's providers.
func (s Settings) Config(cfg Config) Config {
	cfg.MaxConns = int32(s.MaxConns) // #nosec G115 -- DB_MAX_CONNS is checked to be within 2..1000
	cfg.StatementTimeout, cfg.LockTimeout, cfg.IdleInTransactionTimeout = s.StatementTimeout, s.LockTimeout, s.IdleInTransactionTimeout
	return cfg
}
