// Package postgres opens a service's own PostgreSQL database, applies its
// embedded migrations and traces every query.
//
// Each service owns one database: [Open] creates it on first start from an
// admin connection URL, so a single local server (or one container in
// compose) can hold the databases of every service without manual set-up.
//
// To drop it from a service, replace [Open] with pgxpool.New and run your
// migrations some other way; nothing else in the platform depends on it.
package postgres
