package inbox

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/postgrestest"
)

func TestHandlerAppliesEachMessageOnce(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"inbox": Migrations()})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	h := handler(pool, "test", func(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
		_, err := tx.Exec(ctx, `UPDATE counter SET n = n + 1`)
		return err
	}, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	msg := func(id string) kafka.Message { return kafka.Message{Event: kafka.Event{ID: id}} }

	// The same message delivered concurrently and repeatedly: applied once.
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Handle(ctx, msg("m-1")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := h.Handle(ctx, msg("m-2")); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT n FROM counter`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("counter = %d (%v), want 2", n, err)
	}
	// The nine skipped redeliveries are counted.
	if dups := duplicatesCounted(t, reader); dups != 9 {
		t.Fatalf("inbox.duplicates = %d, want the 9 redeliveries", dups)
	}
	// Another consumer has its own record of the same ID.
	other := handler(pool, "other", func(ctx context.Context, tx pgx.Tx, m kafka.Message) error { return nil }, observe.Discard().MeterProvider)
	if err := other.Handle(ctx, msg("m-1")); err != nil {
		t.Fatal(err)
	}
}

// A redelivered message runs its handler (the inbox records the ID with
// the commit), which may then fail on what the first delivery changed: it
// is skipped as a duplicate all the same, its effect rolled back, and
// what it asked to run after the commit never runs.
func TestRedeliveryWhoseHandlerFailsIsSkipped(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"inbox": Migrations()})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE applied (id text PRIMARY KEY); CREATE TABLE log (id text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	afterCalls := 0
	h := handler(pool, "test", func(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
		if _, err := tx.Exec(ctx, `INSERT INTO log (id) VALUES ($1)`, m.ID); err != nil {
			return err
		}
		AfterCommit(ctx, func(context.Context) error { afterCalls++; return nil })
		if m.Type == "strict" {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM applied WHERE id = $1`, m.ID).Scan(&n); err != nil || n > 0 {
				return kafka.Permanent(errors.New("applied already"))
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO applied (id) VALUES ($1)`, m.ID) // fails on a second delivery
		return err
	}, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	for _, m := range []kafka.Message{
		{Event: kafka.Event{ID: "a"}}, {Event: kafka.Event{ID: "a"}},
		{Event: kafka.Event{ID: "b", Type: "strict"}}, {Event: kafka.Event{ID: "b", Type: "strict"}},
	} {
		if err := h.Handle(ctx, m); err != nil {
			t.Fatalf("delivery of %s: %v, want the redelivery skipped", m.ID, err)
		}
	}
	var logged int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM log`).Scan(&logged); err != nil || logged != 2 || afterCalls != 2 {
		t.Fatalf("%d effects kept (%v), %d after-commit calls: want the first delivery's of each, 2", logged, err, afterCalls)
	}
	if dups := duplicatesCounted(t, reader); dups != 2 {
		t.Fatalf("inbox.duplicates = %d, want the 2 redeliveries", dups)
	}
}

func TestFailedHandlerRecordsNothing(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"inbox": Migrations()})
	ctx := context.Background()
	calls := 0
	h := handler(pool, "test", func(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
		calls++
		if calls == 1 {
			return errors.New("boom")
		}
		return nil
	}, observe.Discard().MeterProvider)
	m := kafka.Message{Event: kafka.Event{ID: "m"}}
	if err := h.Handle(ctx, m); err == nil {
		t.Fatal("want the handler's error")
	}
	if err := h.Handle(ctx, m); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("handler ran %d times, want 2: a failed attempt must not be recorded as applied", calls)
	}
}

func TestPruneForgetsOnlyOldIDs(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"inbox": Migrations()})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO inbox (consumer, event_id, processed_at)
		SELECT 'c', 'old-' || g, now() - interval '10 days' FROM generate_series(1, 12000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO inbox (consumer, event_id) VALUES ('c', 'recent')`); err != nil {
		t.Fatal(err)
	}
	n, err := Prune(ctx, pool, time.Now().Add(-7*24*time.Hour))
	if err != nil || n != 12000 {
		t.Fatalf("pruned %d (%v), want 12000", n, err)
	}
	var left int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM inbox`).Scan(&left)
	if left != 1 {
		t.Fatalf("%d IDs left, want the recent one", left)
	}
}

// duplicatesCounted is the sum of inbox.duplicates read by reader.
func duplicatesCounted(t *testing.T, reader sdkmetric.Reader) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var dups int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "inbox.duplicates" {
				for _, dp := range sum.DataPoints {
					dups += dp.Value
				}
			}
		}
	}
	return dups
}

// A batch applies in one transaction: all of it, each message once (a
// message applied before is skipped), or, when one message fails, none of
// it. What the handlers ask to run after the commit runs after it, every
// call even when one fails. Skipped duplicates are counted once their
// batch commits: a batch that rolls back is handled again, one message at
// a time, and counting its duplicates then too would count them twice.
func TestBatchAppliesAllOrNothingEachOnce(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"inbox": Migrations()})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE applied (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var afterCalls []string
	reader := sdkmetric.NewManualReader()
	b := batch(pool, "test", func(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
		if m.ID == "poison" {
			return errors.New("boom")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO applied (id) VALUES ($1)`, m.ID); err != nil {
			return err
		}
		AfterCommit(ctx, func(context.Context) error {
			var n int
			// After the commit: another connection sees the row.
			if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM applied WHERE id = $1`, m.ID).Scan(&n); err != nil || n != 1 {
				return errors.New("ran before the commit")
			}
			afterCalls = append(afterCalls, m.ID)
			if m.ID == "b" {
				return errors.New("provider down")
			}
			return nil
		})
		return nil
	}, nil, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	batch := func(ids ...string) error {
		ctxs := make([]context.Context, len(ids))
		msgs := make([]kafka.Message, len(ids))
		for i, id := range ids {
			ctxs[i], msgs[i] = ctx, kafka.Message{Event: kafka.Event{ID: id}}
		}
		return b.HandleBatch(ctxs, msgs)
	}
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM applied`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if err := batch("a", "b", "c"); err == nil || len(afterCalls) != 3 {
		t.Fatalf("err %v after calls %v: want b's failure reported after all three ran", err, afterCalls)
	}
	if err := batch("c", "d", "poison"); err == nil {
		t.Fatal("want the poison message's error")
	}
	if n := count(); n != 3 {
		t.Fatalf("%d rows after a failed batch, want the first batch's 3: d must roll back with poison", n)
	}
	if dups := duplicatesCounted(t, reader); dups != 0 {
		t.Fatalf("inbox.duplicates = %d after a batch that rolled back, want 0: c was skipped in no committed batch", dups)
	}
	afterCalls = nil
	if err := batch("a", "d", "c"); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 4 || len(afterCalls) != 1 {
		t.Fatalf("%d rows, after calls %v: want a and c skipped as applied, d applied once", n, afterCalls)
	}
	// An ID twice in one batch (one statement records the batch's IDs):
	// applied once.
	afterCalls = nil
	if err := batch("f", "e", "f"); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 6 || len(afterCalls) != 2 {
		t.Fatalf("%d rows, after calls %v: want e and f applied once each", n, afterCalls)
	}
	if dups := duplicatesCounted(t, reader); dups != 3 {
		t.Fatalf("inbox.duplicates = %d, want 3: a and c skipped once, f's repeat", dups)
	}
}

// RecordAll reports, in the order asked, which IDs are new: not an ID
// recorded before, and not the repeat of an ID in the same call.
func TestRecordAllReportsTheFirstOfEachID(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"inbox": Migrations()})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO inbox (consumer, event_id) VALUES ('c', 'old'), ('other', 'y')`); err != nil {
		t.Fatal(err)
	}
	first, err := RecordAll(ctx, pool, "c", []string{"z", "old", "y", "z", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, false, true}; !slices.Equal(first, want) {
		t.Fatalf("first %v, want %v", first, want)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM inbox WHERE consumer = 'c'`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("%d IDs of c recorded (%v), want old, z, y, a", n, err)
	}
}

// A type routed to nil costs no transaction and leaves no ID; a known type
// is recorded; an unknown one is a permanent failure (dead-lettered).
func TestIgnoredTypesSkipTheTransaction(t *testing.T) {
	pool := postgrestest.Pool(t, nil)
	ctx := context.Background()
	in, err := Setup(ctx, pool, observe.Discard(), Config{Consumer: "test"})
	if err != nil {
		t.Fatal(err)
	}
	commits := 0
	in2, err := Setup(ctx, pool, observe.Discard(), Config{Consumer: "test", Committed: func() { commits++ }})
	if err != nil {
		t.Fatal(err)
	}
	routes := Routes{
		"x.ignored": nil,
		"x.applied": func(context.Context, pgx.Tx, kafka.Message) error { return nil },
	}
	msg := func(typ, id string) kafka.Message { return kafka.Message{Event: kafka.Event{Type: typ, ID: id}} }
	for _, h := range []kafka.Handler{in.Handler(routes), in2.Handler(routes)} {
		if err := h.Handle(ctx, msg("x.ignored", "i-1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.Batch(routes).HandleBatch([]context.Context{ctx, ctx}, []kafka.Message{msg("x.ignored", "i-2"), msg("x.applied", "a-1")}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	rows, _ := pool.Query(ctx, `SELECT event_id FROM inbox ORDER BY 1`)
	ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ids) != 1 || ids[0] != "a-1" || commits != 0 {
		t.Fatalf("recorded %v (%v), %d commits: want only the applied message, and no transaction for the ignored", ids, err, commits)
	}
	if err := in.Handler(routes).Handle(ctx, msg("x.unknown", "u-1")); !kafka.IsPermanent(err) {
		t.Fatalf("unknown type: %v, want a permanent failure", err)
	}
}

// A transaction PostgreSQL refuses for its data (a value out of a column's
// range, a duplicate key) fails Hopeless, so the consumer dead-letters the
// message after a few tries; any other failure stays an ordinary retry.
func TestDataErrorsAreHopeless(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"inbox": Migrations()})
	ctx := context.Background()
	for _, tc := range []struct {
		sql      string
		hopeless bool
	}{
		{`SELECT 2147483648::int`, true},               // 22003 numeric_value_out_of_range
		{`SELECT 'x'::int`, true},                      // 22P02 invalid_text_representation
		{`INSERT INTO inbox VALUES (NULL, 'e')`, true}, // 23502 not_null_violation
		{`SELECT pg_sleep('nope')`, true},              // 22P02 again, from a function
		{`SELECT * FROM no_such_table`, false},         // 42P01: a bug or a migration behind, not the data
	} {
		h := handler(pool, "test", func(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
			_, err := tx.Exec(ctx, tc.sql)
			return err
		}, observe.Discard().MeterProvider)
		err := h.Handle(ctx, kafka.Message{Event: kafka.Event{ID: tc.sql}})
		if err == nil || kafka.IsHopeless(err) != tc.hopeless {
			t.Errorf("%s: %v (hopeless %v), want hopeless %v", tc.sql, err, kafka.IsHopeless(err), tc.hopeless)
		}
	}
}
