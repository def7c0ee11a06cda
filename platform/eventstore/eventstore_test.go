package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/postgrestest"
)

func ev(typ string, n int) eventstore.NewEvent {
	return eventstore.NewEvent{Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		Metadata: map[string]string{"trace_id": "abc"}, OccurredAt: time.Now().UTC().Truncate(time.Microsecond)}
}

func TestAppendLoadReadAll(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	ctx := context.Background()
	appendTx := func(stream string, expected int64, events ...eventstore.NewEvent) (int64, error) {
		var a eventstore.Appended
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var err error
			a, err = eventstore.Append(ctx, tx, stream, expected, events...)
			return err
		})
		return a.Version, err
	}
	if v, err := appendTx("a", 0, ev("Created", 1), ev("Changed", 2)); err != nil || v != 2 {
		t.Fatalf("append: v=%d err=%v", v, err)
	}
	if _, err := appendTx("b", 0, ev("Created", 3)); err != nil {
		t.Fatal(err)
	}
	if v, err := appendTx("a", 2, ev("Changed", 4)); err != nil || v != 3 {
		t.Fatalf("append at 2: v=%d err=%v", v, err)
	}
	for _, stale := range []int64{0, 1, 2, 5} {
		if _, err := appendTx("a", stale, ev("Stale", 9)); !errors.Is(err, eventstore.ErrVersionConflict) {
			t.Errorf("append at stale version %d: %v, want ErrVersionConflict", stale, err)
		}
	}
	got, err := eventstore.Load(ctx, pool, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Type != "Created" || got[2].Version != 3 || string(got[2].Data) != `{"n": 4}` || got[0].Metadata["trace_id"] != "abc" {
		t.Fatalf("load a: %+v", got)
	}
	all := readAll(t, pool, 4)
	for i := 1; i < len(all); i++ {
		if all[i].Position <= all[i-1].Position {
			t.Fatalf("positions not increasing: %d then %d", all[i-1].Position, all[i].Position)
		}
	}
	after := eventstore.Checkpoint{TxID: all[1].TxID, Position: all[1].Position}
	if page, _ := eventstore.ReadAll(ctx, pool, after, 1); len(page) != 1 || page[0].Position != all[2].Position {
		t.Fatalf("read after %+v: %+v", after, page)
	}
	if tail, _ := eventstore.Load(ctx, pool, "a", 2); len(tail) != 1 || tail[0].Version != 3 {
		t.Fatalf("tail after version 2: %+v", tail)
	}
	if none, err := eventstore.Load(ctx, pool, "missing", 0); err != nil || len(none) != 0 {
		t.Fatalf("unknown stream: %v %v", none, err)
	}
	if until, _ := eventstore.LoadUntil(ctx, pool, "a", got[0].OccurredAt); len(until) == 0 || until[len(until)-1].OccurredAt.After(got[0].OccurredAt) {
		t.Fatalf("until %v: %+v", got[0].OccurredAt, until)
	}
}

// Concurrent writers at the same expected version: exactly one wins, the
// others get ErrVersionConflict, and no event is lost or duplicated.
func TestConcurrentAppendsExactlyOneWins(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	ctx := context.Background()
	const writers = 8
	for round := int64(0); round < 5; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs <- pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					_, err := eventstore.Append(ctx, tx, "hot", round, ev("Tick", i))
					return err
				})
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		wins := 0
		for err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, eventstore.ErrVersionConflict):
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d writers won, want 1", round, wins)
		}
	}
	got, _ := eventstore.Load(ctx, pool, "hot", 0)
	if len(got) != 5 {
		t.Fatalf("stream has %d events, want 5", len(got))
	}
}

// A transaction that took a lower position but commits later is not
// skipped: ReadAll, and a read after a stored checkpoint, hold back
// everything after it until it commits; the latter says so.
func TestReadAllNeverSkipsALateCommit(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	ctx := context.Background()
	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx)
	if _, err := eventstore.Append(ctx, slow, "slow", 0, ev("Created", 1)); err != nil {
		t.Fatal(err)
	}
	appendFirst(t, pool, "fast", 2)
	got, _ := eventstore.ReadAll(ctx, pool, eventstore.Checkpoint{}, 10)
	if len(got) != 0 {
		t.Fatalf("read %d events while an older transaction is in flight: a reader would checkpoint past it", len(got))
	}
	got, held, err := fromStart.Read(ctx, pool, "none stored", 10)
	if err != nil || len(got) != 0 || !held {
		t.Fatalf("read after a stored checkpoint while an older transaction is in flight: %d events, held back %v, %v; want none, held back", len(got), held, err)
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	readFromStart(t, pool, 2, 15*time.Second)
	got = readAll(t, pool, 2)
	if len(got) != 2 || got[0].StreamID != "slow" || got[1].StreamID != "fast" || got[0].Position > got[1].Position {
		t.Fatalf("after commit: %+v", got)
	}
	cp := eventstore.Checkpoint{TxID: got[1].TxID, Position: got[1].Position}
	if !cp.Passed(got[0]) || !cp.Passed(got[1]) {
		t.Fatal("checkpoint does not cover what was read")
	}
	if at, found, err := eventstore.At(ctx, pool, got[0].Position); err != nil || !found || at.TxID != got[0].TxID {
		t.Fatalf("At: %+v %v %v", at, found, err)
	}
}

// Transaction ids are cluster-wide, but a transaction in flight in
// another database cannot write this one's events: it does not hold back
// a read after a stored checkpoint (it held back every projector on the
// server for as long as it ran).
func TestAnotherDatabasesTransactionHoldsNothingBack(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	elsewhere := postgrestest.Pool(t, nil)
	ctx := context.Background()
	long, err := elsewhere.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Rollback(ctx)
	if _, err := long.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil { // it takes an id, older than the event's
		t.Fatal(err)
	}
	appendFirst(t, pool, "s", 1)
	// A writer elsewhere that ends between the read's snapshot and its
	// look at the sessions cannot be placed, and holds the event back
	// for that read: readFromStart looks again.
	readFromStart(t, pool, 1, 5*time.Second)
}

// fromStart reads after a checkpoint that is never stored: from the start.
var fromStart = eventstore.AfterStored(`SELECT 0::bigint AS transaction_id, 0::bigint AS position WHERE $1::text = ''`)

// appendFirst appends stream's first event in a transaction of its own.
func appendFirst(t *testing.T, pool *pgxpool.Pool, stream string, n int) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := eventstore.Append(ctx, tx, stream, 0, ev("Created", n))
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// readFromStart reads from the start until it gets want events and none
// held back, for up to within: transaction ids are cluster-wide, and a
// writer elsewhere may hold them back a moment.
func readFromStart(t *testing.T, pool *pgxpool.Pool, want int, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(5 * time.Millisecond) {
		got, held, err := fromStart.Read(context.Background(), pool, "none stored", 10)
		if err == nil && len(got) == want && !held {
			return
		}
		if err != nil || len(got) > want || time.Now().After(deadline) {
			t.Fatalf("read from the start: %d events, held back %v, %v; want %d, none held back", len(got), held, err, want)
		}
	}
}

func TestSnapshotsKeepTheLatest(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	ctx := context.Background()
	if _, found, err := eventstore.LoadSnapshot(ctx, pool, "s"); found || err != nil {
		t.Fatalf("snapshot of nothing: %v %v", found, err)
	}
	for _, v := range []int64{10, 30, 20} { // an older one arriving late does not win
		if err := eventstore.SaveSnapshot(ctx, pool, "s", eventstore.Snapshot{Version: v, Schema: 1, State: json.RawMessage(fmt.Sprintf(`{"v":%d}`, v))}); err != nil {
			t.Fatal(err)
		}
	}
	s, found, err := eventstore.LoadSnapshot(ctx, pool, "s")
	if err != nil || !found || s.Version != 30 || string(s.State) != `{"v": 30}` {
		t.Fatalf("snapshot %+v %v %v", s, found, err)
	}
}

// LoadLatest returns the snapshot in the shape asked for and the events
// after it; a snapshot in another shape is ignored, and all events come.
func TestLoadLatestReadsSnapshotAndTheEventsAfterIt(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	ctx := context.Background()
	if _, found, events, err := eventstore.LoadLatest(ctx, pool, "s", 1); found || len(events) != 0 || err != nil {
		t.Fatalf("an unknown stream: %v %v %v", found, events, err)
	}
	for v := range 5 {
		if _, err := eventstore.Append(ctx, pool, "s", int64(v), ev("Happened", v+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := eventstore.SaveSnapshot(ctx, pool, "s", eventstore.Snapshot{Version: 3, Schema: 1, State: json.RawMessage(`{"v":3}`)}); err != nil {
		t.Fatal(err)
	}
	versions := func(events []eventstore.Event) (out []int64) {
		for _, e := range events {
			out = append(out, e.Version)
		}
		return out
	}
	snap, found, events, err := eventstore.LoadLatest(ctx, pool, "s", 1)
	if err != nil || !found || snap.Version != 3 || string(snap.State) != `{"v": 3}` || fmt.Sprint(versions(events)) != "[4 5]" ||
		events[0].Type != "Happened" || events[0].StreamID != "s" || events[0].Position == 0 || events[0].TxID == 0 {
		t.Fatalf("schema 1: %+v %v %+v %v", snap, found, events, err)
	}
	_, found, events, err = eventstore.LoadLatest(ctx, pool, "s", 2)
	if err != nil || found || fmt.Sprint(versions(events)) != "[1 2 3 4 5]" {
		t.Fatalf("schema 2 (no snapshot in that shape): %v %v %v", found, versions(events), err)
	}
}

// readAll reads from the start until want events are visible: writing
// transactions elsewhere on the server (other tests) hold events back for
// a moment, as they should.
func readAll(t *testing.T, pool eventstore.Querier, want int) []eventstore.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := eventstore.ReadAll(context.Background(), pool, eventstore.Checkpoint{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) >= want || time.Now().After(deadline) {
			if len(got) != want {
				t.Fatalf("read all: %d events, want %d", len(got), want)
			}
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A transaction that took its id before another appended to the stream
// cannot append after it: its events would be read first.
func TestAppendFromAnOlderTransactionConflicts(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE scratch (n int)`); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := eventstore.Append(ctx, tx, "s", 0, ev("Created", 1))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	early, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Rollback(ctx)
	if _, err := early.Exec(ctx, `INSERT INTO scratch VALUES (1)`); err != nil { // takes a transaction id now, like an inbox insert
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := eventstore.Append(ctx, tx, "s", 1, ev("Changed", 2))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := eventstore.Append(ctx, early, "s", 2, ev("Changed", 3)); !errors.Is(err, eventstore.ErrVersionConflict) {
		t.Fatalf("append from the older transaction: %v, want ErrVersionConflict", err)
	}
	_ = early.Rollback(ctx)
	// Retried in a new transaction, it goes through.
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := eventstore.Append(ctx, tx, "s", 2, ev("Changed", 3), ev("Changed", 4))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, pool, 4)
	for i, e := range all {
		if e.Version != int64(i+1) {
			t.Fatalf("reading order %d is version %d", i, e.Version)
		}
	}
}

// Writers here and in another database commit out of the order of their
// transaction ids (each sleeps inside its transaction for a random while),
// and a reader moves a stored checkpoint past what each read returned: it
// sees every event once, none skipped by a transaction that committed
// after a younger one was read.
func TestReadsAfterAStoredCheckpointSeeEveryEventOnce(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	elsewhere := postgrestest.Pool(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := pool.Exec(ctx, `CREATE TABLE checkpoints (name text PRIMARY KEY, transaction_id bigint, position bigint)`); err != nil {
		t.Fatal(err)
	}
	after := eventstore.AfterStored(`SELECT transaction_id, position FROM checkpoints WHERE name = $1`)
	const writers, each = 6, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(2)
		go func() { // this database's writer
			defer wg.Done()
			for i := range each {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil { // its id, taken first
						return err
					}
					time.Sleep(time.Duration((w*7+i*3)%5) * time.Millisecond)
					_, err := eventstore.Append(ctx, tx, fmt.Sprintf("w%d-%d", w, i), 0, ev("Created", i))
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() { // another database's, holding ids in flight all along
			defer wg.Done()
			for ctx.Err() == nil {
				_ = pgx.BeginFunc(ctx, elsewhere, func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, `SELECT pg_current_xact_id(), pg_sleep(0.003)`)
					return err
				})
			}
		}()
	}
	seen := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < writers*each {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d events", len(seen), writers*each)
		}
		got, _, err := after.Read(ctx, pool, "r", 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			seen[e.StreamID]++
			if seen[e.StreamID] > 1 {
				t.Fatalf("%s read twice", e.StreamID)
			}
		}
		if n := len(got); n > 0 {
			last := got[n-1]
			if _, err := pool.Exec(ctx, `INSERT INTO checkpoints VALUES ('r', $1, $2)
				ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, position = EXCLUDED.position`,
				int64(last.TxID), last.Position); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
	var total int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&total); err != nil || total != writers*each {
		t.Fatalf("%d events stored, %v", total, err)
	}
}
