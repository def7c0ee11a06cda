package postgres

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// InTx runs f in a transaction on a connection of pool and commits if f
// returns nil, as pgx.BeginFunc does, with fewer round trips: BEGIN is
// sent together with the transaction's first statement, and statements
// queued with [Later] together with the next one or with COMMIT. A
// saga step is a handful of short statements, each a round trip that
// costs both the service and PostgreSQL a pair of system calls; these
// two save two or three of them per transaction (docs/performance.md).
//
// A transaction in which f ran no statement sends nothing at all.
func InTx(ctx context.Context, pool *pgxpool.Pool, f func(pgx.Tx) error) (err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire a connection: %w", err)
	}
	// Release closes a connection left inside a transaction rather than
	// pooling it, so no early return can leak one.
	defer conn.Release()
	tx := &pipeTx{conn: conn.Conn()}
	tx.later.Queue("BEGIN")
	defer func() {
		if !tx.done {
			if rerr := tx.Rollback(ctx); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Later runs sql in tx, at the latest when tx commits. In a transaction of
// [InTx] it travels with the next statement or with COMMIT, and an error
// it causes is returned there; elsewhere it runs now. Use it for writes
// whose result nothing reads, such as an outbox row.
func Later(ctx context.Context, tx Execer, sql string, args ...any) error {
	if p, ok := tx.(*pipeTx); ok && !p.done {
		p.later.Queue(sql, args...)
		return nil
	}
	_, err := tx.Exec(ctx, sql, args...)
	return err
}

// LaterRows queues row for sql, a statement that takes one array per
// column and writes a row per element, in the order the rows were queued:
//
//	INSERT INTO t (a, b) SELECT a, b FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS x(a, b, n) ORDER BY n
//
// In a transaction of [InTx] the rows queued for the same sql until the
// next round trip travel as one statement, each argument the array of
// its column: a consumer batch's outbox rows are one statement, not one
// each (a statement costs PostgreSQL a fixed 20–35 µs and a few µs per
// row). The statement takes the place of the group's first row among the
// queued statements, so use it for rows nothing else in the transaction
// reads or orders against, such as outbox rows. Elsewhere it runs now,
// with one-element arrays. Every value must be non-nil, of the same type
// for a column in every row.
func LaterRows(ctx context.Context, tx Execer, sql string, row ...any) error {
	if p, ok := tx.(*pipeTx); ok && !p.done {
		return p.queueRow(sql, row)
	}
	g, err := newRowGroup(row)
	if err == nil {
		err = g.add(row)
	}
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, sql, g.args()...)
	return err
}

// LaterRowsReturning is [LaterRows] for a statement with a RETURNING
// clause: scan reads the row it returned for row, once the statement has
// run (in a transaction of [InTx], when the group is sent). The statement
// must return one row per row queued, in the order queued (an INSERT …
// SELECT … ORDER BY n returns them in the order it inserts them); scan's
// error, or a count that differs, is the statement's error.
func LaterRowsReturning(ctx context.Context, tx Execer, sql string, scan func(pgx.Row) error, row ...any) error {
	if p, ok := tx.(*pipeTx); ok && !p.done {
		if err := p.queueRow(sql, row); err != nil {
			return err
		}
		g := p.groups[sql]
		g.scans = append(g.scans, scan)
		return nil
	}
	g, err := newRowGroup(row)
	if err == nil {
		err = g.add(row)
	}
	if err != nil {
		return err
	}
	g.scans = []func(pgx.Row) error{scan}
	q, ok := tx.(interface {
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	})
	if !ok {
		return fmt.Errorf("postgres: LaterRowsReturning: a %T cannot query", tx)
	}
	rows, err := q.Query(ctx, sql, g.args()...)
	if err != nil {
		return err
	}
	return g.scanReturned(rows)
}

// AfterCommit runs f once tx, a transaction of [InTx], has committed, and
// never when it rolls back or its commit fails (including a commit whose
// outcome is unknown: what it wrote may have committed, and whatever
// follows the table finds it there). It reports false, running nothing,
// for any other transaction.
func AfterCommit(tx Execer, f func()) bool {
	p, ok := tx.(*pipeTx)
	if !ok || p.done {
		return false
	}
	p.after = append(p.after, f)
	return true
}

// rowGroup is a statement of [LaterRows] being filled: its place in the
// queue, one growing array per column, and for [LaterRowsReturning] the
// scan of each row's returned row.
type rowGroup struct {
	q     *pgx.QueuedQuery
	cols  []reflect.Value
	scans []func(pgx.Row) error
}

// scanReturned hands each row of rows, the statement's result, to the
// scan of the row queued in its place.
func (g *rowGroup) scanReturned(rows pgx.Rows) error {
	defer rows.Close()
	i := 0
	for rows.Next() {
		if i == len(g.scans) {
			return fmt.Errorf("postgres: LaterRowsReturning: more rows returned than the %d written", len(g.scans))
		}
		if err := g.scans[i](rows); err != nil {
			return err
		}
		i++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if i != len(g.scans) {
		return fmt.Errorf("postgres: LaterRowsReturning: %d rows returned for the %d written", i, len(g.scans))
	}
	return nil
}

// newRowGroup returns a group with an empty array per column of row, of
// its values' types.
func newRowGroup(row []any) (*rowGroup, error) {
	g := &rowGroup{cols: make([]reflect.Value, len(row))}
	for i, v := range row {
		if v == nil {
			return nil, fmt.Errorf("postgres: LaterRows: column %d is nil", i+1)
		}
		g.cols[i] = reflect.MakeSlice(reflect.SliceOf(reflect.TypeOf(v)), 0, 8)
	}
	return g, nil
}

// add appends row to the group's arrays, or none of it when a value does
// not fit its column.
func (g *rowGroup) add(row []any) error {
	if len(row) != len(g.cols) {
		return fmt.Errorf("postgres: LaterRows: %d columns, the statement's earlier rows have %d", len(row), len(g.cols))
	}
	for i, v := range row {
		if v == nil || reflect.TypeOf(v) != g.cols[i].Type().Elem() {
			return fmt.Errorf("postgres: LaterRows: column %d is a %T, its earlier rows' are %s", i+1, v, g.cols[i].Type().Elem())
		}
	}
	for i, v := range row {
		g.cols[i] = reflect.Append(g.cols[i], reflect.ValueOf(v))
	}
	return nil
}

// args is the statement's arguments: the arrays.
func (g *rowGroup) args() []any {
	args := make([]any, len(g.cols))
	for i, col := range g.cols {
		args[i] = col.Interface()
	}
	return args
}

func (t *pipeTx) queueRow(sql string, row []any) error {
	g := t.groups[sql]
	if g == nil {
		var err error
		if g, err = newRowGroup(row); err != nil {
			return err
		}
		g.q = t.later.Queue(sql)
		if t.groups == nil {
			t.groups = map[string]*rowGroup{}
		}
		t.groups[sql] = g
	}
	return g.add(row)
}

// Execer is what [Later] runs a statement on: a pgx.Tx.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// pipeTx is the pgx.Tx of [InTx]: later holds the statements not sent
// yet (BEGIN first, until the first flush).
//
// A transaction in which a statement failed can only roll back, as in
// PostgreSQL itself; pipeTx keeps that state (err) instead of inferring
// it from the connection, because a failure before BEGIN reached the
// server leaves the connection idle, outside any transaction, where the
// next statement would autocommit and a COMMIT would succeed. Every
// statement after a failure returns [ErrTxFailed], and so does Commit,
// also for a caller that dropped the first error.
type pipeTx struct {
	conn   *pgx.Conn
	later  pgx.Batch
	groups map[string]*rowGroup // LaterRows' statements in later, by SQL
	after  []func()             // AfterCommit's
	sent   bool                 // BEGIN has reached the server
	done   bool                 // committed or rolled back
	err    error                // the first failure: the transaction can only roll back
}

var errTxDone = errors.New("transaction already ended")

// ErrTxFailed is what every statement and Commit of an [InTx]
// transaction return after one of its statements failed: the
// transaction can only roll back. It wraps that first failure.
var ErrTxFailed = errors.New("transaction failed earlier")

// fail records err as the transaction's failure (the first one wins) and
// returns it.
func (t *pipeTx) fail(err error) error {
	if err != nil && t.err == nil {
		t.err = err
	}
	return err
}

// usable returns why no statement may run now, or nil.
func (t *pipeTx) usable() error {
	if t.done {
		return errTxDone
	}
	if t.err != nil {
		return fmt.Errorf("%w: %w", ErrTxFailed, t.err)
	}
	return nil
}

// send sends the queued statements followed by sql (if not empty) in one
// round trip and returns the batch results positioned at sql's result,
// or the error of the first queued statement that failed.
func (t *pipeTx) send(ctx context.Context, sql string, args ...any) (pgx.BatchResults, error) {
	var then []*pgx.QueuedQuery
	if sql != "" {
		then = []*pgx.QueuedQuery{{SQL: sql, Arguments: args}}
	}
	return t.sendWith(ctx, then)
}

// sendWith sends the queued statements followed by then in one round
// trip and returns the batch results positioned at then's first result,
// or the error of the first queued statement that failed.
func (t *pipeTx) sendWith(ctx context.Context, then []*pgx.QueuedQuery) (pgx.BatchResults, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	var returning map[*pgx.QueuedQuery]*rowGroup
	for _, g := range t.groups {
		g.q.Arguments = g.args()
		if len(g.scans) > 0 {
			if returning == nil {
				returning = map[*pgx.QueuedQuery]*rowGroup{}
			}
			returning[g.q] = g
		}
	}
	b := t.later
	t.later, t.groups = pgx.Batch{}, nil
	n := b.Len()
	b.QueuedQueries = append(b.QueuedQueries, then...)
	br := t.conn.SendBatch(ctx, &b)
	t.sent = true
	for i := 0; i < n; i++ {
		var err error
		if g := returning[b.QueuedQueries[i]]; g != nil {
			var rows pgx.Rows
			if rows, err = br.Query(); err == nil {
				err = g.scanReturned(rows)
			}
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			_ = br.Close()
			return nil, t.fail(fmt.Errorf("%s: %w", operation(b.QueuedQueries[i].SQL), err))
		}
	}
	return br, nil
}

// direct reports whether a statement can go alone: nothing is queued.
func (t *pipeTx) direct() bool { return t.later.Len() == 0 && t.usable() == nil }

func (t *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.direct() {
		tag, err := t.conn.Exec(ctx, sql, args...)
		return tag, t.fail(err)
	}
	br, err := t.send(ctx, sql, args...)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := execClose(br)
	return tag, t.fail(err)
}

// execClose reads the result br is positioned at and closes br.
func execClose(br pgx.BatchResults) (pgconn.CommandTag, error) {
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// Query never returns nil Rows, as pgx's own: a caller that reads the
// rows without looking at the error gets it from Rows.Err.
func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.direct() {
		rows, err := t.conn.Query(ctx, sql, args...)
		if err != nil {
			_ = t.fail(err)
			if rows == nil {
				rows = errRows{err}
			}
			return rows, err
		}
		return &txRows{Rows: rows, tx: t}, nil
	}
	br, err := t.send(ctx, sql, args...)
	if err != nil {
		return errRows{err}, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return errRows{err}, t.fail(err)
	}
	return &txRows{Rows: rows, br: br, tx: t}, nil
}

func (t *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := t.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return rowOf{rows}
}

// Commit sends what is queued and COMMIT in one round trip. It refuses
// (rolling back) when a statement failed, whether or not f returned that
// error, and when the server holds no open transaction for it.
func (t *pipeTx) Commit(ctx context.Context) error {
	if t.done {
		return errTxDone
	}
	if t.err != nil {
		_ = t.Rollback(ctx)
		return fmt.Errorf("%w: %w", pgx.ErrTxCommitRollback, t.err)
	}
	if !t.sent && t.later.Len() == 1 { // only BEGIN: nothing to commit
		t.done = true
		t.runAfter()
		return nil
	}
	if t.sent && t.conn.PgConn().TxStatus() != 'T' { // failed ('E') or never began ('I')
		_ = t.Rollback(ctx)
		return fmt.Errorf("%w: the server holds no open transaction (status %q)", pgx.ErrTxCommitRollback, t.conn.PgConn().TxStatus())
	}
	br, err := t.send(ctx, "COMMIT")
	if err != nil {
		_ = t.Rollback(ctx)
		return err
	}
	tag, err := execClose(br)
	t.done = true
	if err != nil {
		return err
	}
	if tag.String() == "ROLLBACK" { // the server had aborted the transaction
		return pgx.ErrTxCommitRollback
	}
	t.runAfter()
	return nil
}

// runAfter runs what AfterCommit queued, once.
func (t *pipeTx) runAfter() {
	after := t.after
	t.after = nil
	for _, f := range after {
		f()
	}
}

// Rollback ends the transaction, dropping what is still queued.
func (t *pipeTx) Rollback(ctx context.Context) error {
	if t.done {
		return errTxDone
	}
	t.done = true
	t.later, t.groups, t.after = pgx.Batch{}, nil, nil
	if !t.sent {
		return nil
	}
	_, err := t.conn.Exec(ctx, "ROLLBACK")
	return err
}

// flush sends what is queued on its own, for the calls below that cannot
// travel in a batch.
func (t *pipeTx) flush(ctx context.Context) error {
	if err := t.usable(); err != nil {
		return err
	}
	if t.later.Len() == 0 {
		return nil
	}
	br, err := t.send(ctx, "")
	if err != nil {
		return err
	}
	return br.Close()
}

// SendBatch sends b's statements after what is queued (BEGIN, Later
// writes), all in one round trip: independent reads sent together cost
// one round trip, not one each.
func (t *pipeTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	br, err := t.sendWith(ctx, b.QueuedQueries)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return &txBatch{BatchResults: br, tx: t}
}

func (t *pipeTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	n, err := t.conn.CopyFrom(ctx, table, cols, src)
	return n, t.fail(err)
}

func (t *pipeTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.conn.Prepare(ctx, name, sql)
}

// Begin would start a savepoint; nothing here nests transactions.
func (t *pipeTx) Begin(context.Context) (pgx.Tx, error) {
	return nil, errors.New("postgres.InTx: nested transactions are not supported")
}

// LargeObjects is not supported: pgx builds them from its own Tx only.
func (t *pipeTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

func (t *pipeTx) Conn() *pgx.Conn { return t.conn }

// txRows records a failure the rows report in the transaction, and
// closes the batch (if any) with the rows, so the connection is free for
// the next statement, also when a caller reads to the end without Close.
type txRows struct {
	pgx.Rows
	br pgx.BatchResults
	tx *pipeTx
}

func (r *txRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *txRows) Close() {
	r.Rows.Close()
	_ = r.tx.fail(r.Rows.Err())
	if r.br != nil {
		_ = r.br.Close()
		r.br = nil
	}
}

// txBatch records a failure of a batch sent with SendBatch in the
// transaction.
type txBatch struct {
	pgx.BatchResults
	tx *pipeTx
}

func (b *txBatch) Exec() (pgconn.CommandTag, error) {
	tag, err := b.BatchResults.Exec()
	return tag, b.tx.fail(err)
}

func (b *txBatch) Query() (pgx.Rows, error) {
	rows, err := b.BatchResults.Query()
	if err != nil {
		return rows, b.tx.fail(err)
	}
	return &txRows{Rows: rows, tx: b.tx}, nil
}

func (b *txBatch) QueryRow() pgx.Row {
	rows, err := b.Query()
	if err != nil {
		return errRow{err}
	}
	return rowOf{rows}
}

func (b *txBatch) Close() error { return b.tx.fail(b.BatchResults.Close()) }

// rowOf is pgx's QueryRow over rows: the first row or pgx.ErrNoRows.
type rowOf struct{ rows pgx.Rows }

func (r rowOf) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// errRows is the pgx.Rows of a statement that never ran: no rows, and
// its error from Err, Scan and Values.
type errRows struct{ err error }

func (r errRows) Close()                                       {}
func (r errRows) Err() error                                   { return r.err }
func (r errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (r errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (r errRows) Next() bool                                   { return false }
func (r errRows) Scan(...any) error                            { return r.err }
func (r errRows) Values() ([]any, error)                       { return nil, r.err }
func (r errRows) RawValues() [][]byte                          { return nil }
func (r errRows) Conn() *pgx.Conn                              { return nil }
func (r errRows) TypeMap() *pgtype.Map                         { return nil }
