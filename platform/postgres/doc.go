// Package postgres opens a service's own PostgreSQL database, applies
// embedded migrations and traces every query.
//
// Each service owns one database: [Connect] (the process component, from
// the [Settings] of DATABASE_URL, DATABASE_NAME and DB_MAX_CONNS) waits for
// the server and [Open]s the database, creating it on first start from an
// admin connection URL, so a single local server (or one container in
// compose) holds the databases of every service without manual set-up.
//
// [InTx] runs a transaction in fewer round trips than pgx.BeginFunc (BEGIN
// goes with the first statement, writes queued with [Later] with the next
// statement or COMMIT); every service and platform transaction uses it,
// because a saga is two dozen short transactions and each round trip costs
// both sides system calls (docs/performance.md). [Follow] and [Signal] run
// the loops that wake on a commit of this process.
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
