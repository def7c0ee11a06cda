package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/postgrestest"
)

// sends counts what a connection sends to the server: each statement
// alone and each batch is one round trip.
type sends struct{ n atomic.Int64 }

func (s *sends) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	s.n.Add(1)
	return ctx
}
func (s *sends) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (s *sends) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	s.n.Add(1)
	return ctx
}
func (s *sends) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (s *sends) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func countingPool(t *testing.T) (*pgxpool.Pool, *sends) {
	t.Helper()
	admin, name := postgrestest.NewDatabase(t)
	created, err := postgres.Open(context.Background(), admin, name, observe.Discard(), postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	created.Close()
	cfg, err := pgxpool.ParseConfig(postgrestest.DatabaseURL(t, admin, name))
	if err != nil {
		t.Fatal(err)
	}
	s := &sends{}
	cfg.ConnConfig.Tracer = s
	cfg.MaxConns = 1 // every transaction reuses the connection the last one left
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(context.Background(), `CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return pool, s
}

func count(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A transaction of a read, a write and a write queued with Later costs
// three round trips (BEGIN travels with the read, the queued write with
// COMMIT), where pgx.BeginFunc spends five; and all of it commits.
func TestInTxSendsBeginAndLaterWritesWithOtherStatements(t *testing.T) {
	pool, s := countingPool(t)
	ctx := context.Background()
	work := func(base int) func(tx pgx.Tx) error {
		return func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO t VALUES ($1, 'now')`, base); err != nil {
				return err
			}
			return postgres.Later(ctx, tx, `INSERT INTO t VALUES ($1, 'later')`, base+1)
		}
	}
	if err := pgx.BeginFunc(ctx, pool, work(1)); err != nil { // warms the statement cache too
		t.Fatal(err)
	}
	before := s.n.Load()
	if err := pgx.BeginFunc(ctx, pool, work(3)); err != nil {
		t.Fatal(err)
	}
	plain := s.n.Load() - before

	before = s.n.Load()
	if err := postgres.InTx(ctx, pool, work(5)); err != nil {
		t.Fatal(err)
	}
	piped := s.n.Load() - before
	if plain != 5 || piped != 3 {
		t.Fatalf("round trips: pgx.BeginFunc %d (want 5), InTx %d (want 3)", plain, piped)
	}
	if n := count(t, pool); n != 6 {
		t.Fatalf("%d rows committed, want 6", n)
	}
	// The connection went back to the pool outside a transaction: a
	// statement alone is one round trip and sees the commit.
	var v string
	if err := pool.QueryRow(ctx, `SELECT v FROM t WHERE id = 6`).Scan(&v); err != nil || v != "later" {
		t.Fatalf("row 6: %q, %v", v, err)
	}
}

// A queued write that fails fails the commit, and nothing of the
// transaction stays; an error from f rolls back what was sent and drops
// what was queued; a transaction that ran nothing sends nothing.
func TestInTxIsAllOrNothing(t *testing.T) {
	pool, s := countingPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO t VALUES (1, 'seed')`); err != nil {
		t.Fatal(err)
	}

	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (2, 'x')`); err != nil {
			return err
		}
		return postgres.Later(ctx, tx, `INSERT INTO t VALUES (1, 'duplicate')`)
	})
	if !postgres.IsUniqueViolation(err, "t_pkey") {
		t.Fatalf("commit with a failing queued write: %v, want the unique violation", err)
	}
	if n := count(t, pool); n != 1 {
		t.Fatalf("%d rows after the failed commit, want 1", n)
	}

	boom := errors.New("boom")
	err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (3, 'x')`); err != nil {
			return err
		}
		if err := postgres.Later(ctx, tx, `INSERT INTO t VALUES (4, 'x')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: %v, want f's error", err)
	}
	if n := count(t, pool); n != 1 {
		t.Fatalf("%d rows after f failed, want 1", n)
	}

	before := s.n.Load()
	if err := postgres.InTx(ctx, pool, func(pgx.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n := s.n.Load() - before; n != 0 {
		t.Fatalf("an empty transaction sent %d times, want 0", n)
	}
}

// Reads keep pgx's contract: QueryRow says pgx.ErrNoRows, and rows read
// to the end without Close free the connection for the next statement.
func TestInTxReadsAsPgxDoes(t *testing.T) {
	pool, _ := countingPool(t)
	ctx := context.Background()
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		var v string
		if err := tx.QueryRow(ctx, `SELECT v FROM t WHERE id = 1`).Scan(&v); !errors.Is(err, pgx.ErrNoRows) {
			t.Errorf("QueryRow of no row: %v, want pgx.ErrNoRows", err)
		}
		if err := postgres.Later(ctx, tx, `INSERT INTO t VALUES (1, 'a'), (2, 'b')`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT v FROM t ORDER BY id`) // sends the queued insert first
		if err != nil {
			return err
		}
		var got []string
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				return err
			}
			got = append(got, v)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Errorf("rows %v, want [a b]", got)
		}
		_, err = tx.Exec(ctx, `UPDATE t SET v = 'c' WHERE id = 2`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

// A statement that fails before BEGIN reached the server (here: one that
// does not parse, so the whole first round trip is refused) leaves the
// connection outside any transaction. A caller that drops that error must
// not get its next statement autocommitted nor a COMMIT that succeeds:
// the transaction can only roll back, and nothing of it stays.
func TestInTxAFailedStatementFailsTheRestEvenWhenItsErrorIsDropped(t *testing.T) {
	pool, _ := countingPool(t)
	ctx := context.Background()
	var second error
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, _ = tx.Exec(ctx, `INSERT INTO no_such_table VALUES (1)`) // error dropped
		_, second = tx.Exec(ctx, `INSERT INTO t VALUES (7, 'after the failure')`)
		return nil
	})
	if !errors.Is(second, postgres.ErrTxFailed) {
		t.Errorf("statement after a failure: %v, want ErrTxFailed", second)
	}
	if !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Errorf("commit after a failure: %v, want pgx.ErrTxCommitRollback", err)
	}
	if n := count(t, pool); n != 0 {
		t.Fatalf("%d rows stored by a failed transaction, want 0", n)
	}
}

// Query never answers nil Rows, as pgx's own Query does not: callers that
// read rows without looking at Query's error (pgx.CollectRows(tx.Query(…)))
// get the error, not a panic, when the statements sent with it fail.
func TestInTxQueryNeverReturnsNilRows(t *testing.T) {
	pool, _ := countingPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO t VALUES (1, 'seed')`); err != nil {
		t.Fatal(err)
	}
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if err := postgres.Later(ctx, tx, `INSERT INTO t VALUES (1, 'duplicate')`); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT v FROM t`) // the queued insert fails first
		_, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[string])
		if !postgres.IsUniqueViolation(err, "t_pkey") {
			t.Errorf("rows of a failed round trip: %v, want the unique violation", err)
		}
		rows, _ = tx.Query(ctx, `SELECT v FROM t`) // and every statement after it
		if _, err := pgx.CollectRows(rows, pgx.RowTo[string]); !errors.Is(err, postgres.ErrTxFailed) {
			t.Errorf("rows after a failure: %v, want ErrTxFailed", err)
		}
		return nil
	})
	if !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("commit: %v, want pgx.ErrTxCommitRollback", err)
	}
}

// Rows queued with LaterRows for one statement travel as one statement
// (a statement trigger counts them) until the next round trip, in the
// order they were queued; outside InTx each row is a statement of its
// own; a row whose column types differ from the earlier rows' is refused.
func TestLaterRowsWritesTheRowsOfAStatementAsOne(t *testing.T) {
	pool, _ := countingPool(t)
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE TABLE rows (id bigserial PRIMARY KEY, v text NOT NULL, k bigint NOT NULL)`,
		`CREATE TABLE statements (n int NOT NULL)`,
		`CREATE FUNCTION counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO statements VALUES (1); RETURN NULL; END $$`,
		`CREATE TRIGGER counted AFTER INSERT ON rows FOR EACH STATEMENT EXECUTE FUNCTION counted()`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	const insert = `INSERT INTO rows (v, k) SELECT v, k FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS x(v, k, n) ORDER BY n`
	statements := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM statements`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		for i, v := range []string{"c", "a", "b"} {
			if err := postgres.LaterRows(ctx, tx, insert, v, int64(i)); err != nil {
				return err
			}
		}
		if err := postgres.Later(ctx, tx, `INSERT INTO t VALUES (1, 'between')`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM rows`).Scan(&n); err != nil || n != 3 {
			t.Errorf("the queued rows before a read: %d, %v; want 3", n, err)
		}
		for i, v := range []string{"e", "d"} {
			if err := postgres.LaterRows(ctx, tx, insert, v, int64(3+i)); err != nil {
				return err
			}
		}
		if err := postgres.LaterRows(ctx, tx, insert, "f", 5); err == nil {
			t.Error("a row with an int where the earlier rows have an int64: want an error")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := statements(); n != 2 {
		t.Fatalf("%d INSERT statements, want 2: the rows queued before the read, and those after", n)
	}
	rows, err := pool.Query(ctx, `SELECT v FROM rows ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || strings.Join(got, "") != "cabed" {
		t.Fatalf("rows in id order: %v, %v; want c a b e d, as queued", got, err)
	}

	// Outside InTx: now, one statement per row.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := postgres.LaterRows(ctx, tx, insert, "g", int64(6)); err != nil {
			return err
		}
		return postgres.LaterRows(ctx, tx, insert, "h", int64(7))
	})
	if err != nil || statements() != 4 {
		t.Fatalf("outside InTx: %v, %d statements in all, want 4", err, statements())
	}
}

// A batch of reads sent in a transaction of InTx goes with what is
// queued (BEGIN, Later writes): one round trip, its results in order.
func TestInTxSendBatchCarriesTheQueuedStatements(t *testing.T) {
	pool, s := countingPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO t VALUES (1, 'one')`); err != nil {
		t.Fatal(err)
	}
	var trips int64
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if err := postgres.Later(ctx, tx, `INSERT INTO t VALUES (2, 'two')`); err != nil {
			return err
		}
		before := s.n.Load()
		b := &pgx.Batch{}
		b.Queue(`SELECT v FROM t WHERE id = 1 FOR UPDATE`)
		b.Queue(`SELECT count(*) FROM t`)
		br := tx.SendBatch(ctx, b)
		var v string
		var n int
		if err := br.QueryRow().Scan(&v); err != nil {
			return err
		}
		if err := br.QueryRow().Scan(&n); err != nil {
			return err
		}
		if err := br.Close(); err != nil {
			return err
		}
		trips = s.n.Load() - before
		if v != "one" || n != 2 {
			t.Errorf("read %q and %d rows, want one and 2 (the queued write is in)", v, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if trips != 1 {
		t.Fatalf("the batch took %d round trips, want 1 (BEGIN and the queued write with it)", trips)
	}
	if n := count(t, pool); n != 2 {
		t.Fatalf("%d rows committed, want 2", n)
	}
}

// The rows of LaterRowsReturning's statement reach their scans once it
// runs, each its own row, and the group still travels with COMMIT.
func TestLaterRowsReturningScansEachRowsResult(t *testing.T) {
	pool, s := countingPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE rows (id bigserial PRIMARY KEY, v text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const insert = `INSERT INTO rows (v) SELECT v FROM unnest($1::text[]) WITH ORDINALITY AS x(v, n) ORDER BY n RETURNING id, v`
	got := map[string]int64{}
	scan := func(want string) func(pgx.Row) error {
		return func(r pgx.Row) error {
			var id int64
			var v string
			if err := r.Scan(&id, &v); err != nil {
				return err
			}
			if v != want {
				return errors.New("row " + v + " returned in the place of " + want)
			}
			got[v] = id
			return nil
		}
	}
	before := s.n.Load()
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1, 'one')`); err != nil {
			return err
		}
		for _, v := range []string{"c", "a", "b"} {
			if err := postgres.LaterRowsReturning(ctx, tx, insert, scan(v), v); err != nil {
				return err
			}
		}
		if len(got) != 0 {
			t.Error("scanned before the statement ran")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.n.Load() - before; n != 2 {
		t.Errorf("%d round trips, want 2 (BEGIN with the write, the rows with COMMIT)", n)
	}
	if len(got) != 3 || !(got["c"] < got["a"] && got["a"] < got["b"]) {
		t.Fatalf("ids %v: want one per row, in the order queued", got)
	}

	// Outside InTx: now.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := postgres.LaterRowsReturning(ctx, tx, insert, scan("d"), "d"); err != nil {
			return err
		}
		if got["d"] == 0 {
			t.Error("outside InTx: not scanned at once")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// AfterCommit's work runs once the transaction committed, and not when
// it rolls back or its COMMIT fails.
func TestAfterCommitRunsOnlyOnCommit(t *testing.T) {
	pool, _ := countingPool(t)
	ctx := context.Background()
	ran := 0
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if !postgres.AfterCommit(tx, func() { ran++ }) {
			t.Error("AfterCommit refused InTx's transaction")
		}
		if err := postgres.Later(ctx, tx, `INSERT INTO t VALUES (1, 'one')`); err != nil {
			return err
		}
		if ran != 0 {
			t.Error("ran before the commit")
		}
		return nil
	})
	if err != nil || ran != 1 {
		t.Fatalf("committed: %v, ran %d times, want once", err, ran)
	}
	err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		postgres.AfterCommit(tx, func() { ran++ })
		return errors.New("changed its mind")
	})
	if err == nil || ran != 1 {
		t.Fatalf("rolled back: %v, ran %d times in all, want still 1", err, ran)
	}
	err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		postgres.AfterCommit(tx, func() { ran++ })
		return postgres.Later(ctx, tx, `INSERT INTO t VALUES (1, 'taken')`) // fails with COMMIT
	})
	if err == nil || ran != 1 {
		t.Fatalf("failed at COMMIT: %v, ran %d times in all, want still 1", err, ran)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if postgres.AfterCommit(tx, func() { ran++ }) {
			t.Error("AfterCommit took a transaction it cannot see commit")
		}
		return nil
	})
	if err != nil || ran != 1 {
		t.Fatalf("pgx's transaction: %v, ran %d times in all, want still 1", err, ran)
	}
}
