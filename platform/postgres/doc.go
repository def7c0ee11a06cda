// Package postgres opens a service's own PostgreSQL database, applies
// embedded migrations and traces every query.
//
// Each service owns one database: [Connect] (the process component, from
// the [Settings] of DATABASE_URL, DATABASE_NAME and DB_MAX_CONNS) waits for
// the server and [Open]s the database, creating it on first start from an
// admin connection URL, so a single local server (or one container in
// compose) holds the databases of every service without manual set-up.
//
// [Migrate] applies one set of goose migrations with its own version
// table, so every package that owns tables ships and applies its own:
// the outbox, inbox, event store, projection and election packages do in
// their Setup, each service's store in its own.
//
// To drop it from a service, replace [Connect] with pgxpool.New and run
// your migrations some other way; the platform packages above still need
// [Migrate] and [Dir], or their tables created by hand.
package postgres
