package projection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/platform/projection"
)

// counts is a read model: events per stream, idempotent by version.
type counts struct{}

func (counts) Apply(b *pgx.Batch, table string, e eventstore.Event) error {
	b.Queue(fmt.Sprintf(`INSERT INTO %s AS c (stream_id, version, n) VALUES ($1, $2, 1)
		ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, n = c.n + 1 WHERE c.version < EXCLUDED.version`,
		pgx.Identifier{table}.Sanitize()), e.StreamID, e.Version)
	return nil
}

func setup(t *testing.T) (*pgxpool.Pool, *projection.Projector) {
	t.Helper()
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations(), "projection": projection.Migrations()})
	if _, err := pool.Exec(context.Background(), `CREATE TABLE counts (stream_id text PRIMARY KEY, version bigint NOT NULL, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	p, err := projection.New(pool, counts{}, observe.Discard(), projection.Config{Name: "counts", Table: "counts", BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	return pool, p
}

func appendN(t *testing.T, pool *pgxpool.Pool, stream string, from, n int) int64 {
	t.Helper()
	var last eventstore.Appended
	for i := range n {
		err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
			var err error
			last, err = eventstore.Append(context.Background(), tx, stream, int64(from+i), eventstore.NewEvent{
				Type: "Tick", Data: json.RawMessage(`{}`), OccurredAt: time.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return last.Position
}

func countOf(t *testing.T, pool *pgxpool.Pool, stream string) int {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(), `SELECT n FROM counts WHERE stream_id = $1`, stream).Scan(&n)
	if err == pgx.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// drain steps until the projector has applied everything: events can be
// held back for a moment by writing transactions elsewhere on the server.
func drain(t *testing.T, p *projection.Projector) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := p.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if err := p.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if p.Status().LagEvents == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("projector still behind: %+v", p.Status())
		}
		if n == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestProjectsEveryEventOnceAcrossBatches(t *testing.T) {
	pool, p := setup(t)
	appendN(t, pool, "a", 0, 20)
	appendN(t, pool, "b", 0, 3)
	drain(t, p)
	if countOf(t, pool, "a") != 20 || countOf(t, pool, "b") != 3 {
		t.Fatalf("counts a=%d b=%d", countOf(t, pool, "a"), countOf(t, pool, "b"))
	}
	// A replayed batch (crash before the checkpoint) changes nothing.
	if _, err := pool.Exec(context.Background(), `UPDATE projection_checkpoints SET transaction_id = 0, position = 0`); err != nil {
		t.Fatal(err)
	}
	drain(t, p)
	if countOf(t, pool, "a") != 20 {
		t.Fatalf("replay changed the model: a=%d", countOf(t, pool, "a"))
	}
	if err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Status(); s.LagEvents != 0 || s.Checkpoint.Position == 0 || s.Head == 0 {
		t.Fatalf("status %+v", s)
	}
}

// Replicas take turns at a projection: each step starts from the stored
// checkpoint, so a replica whose own last step is old applies only what
// came after the other's (a step reads after the checkpoint it knows, and
// again when the stored one moved).
func TestReplicasTakingTurnsApplyEachEventOnce(t *testing.T) {
	pool, a := setup(t)
	b, err := projection.New(pool, counts{}, observe.Discard(), projection.Config{Name: "counts", Table: "counts", BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, pool, "s", 0, 3)
	drain(t, a)
	appendN(t, pool, "s", 3, 2)
	drain(t, b)
	if n, err := a.Step(context.Background()); err != nil || n != 0 {
		t.Fatalf("a's step applied %d events (%v), want 0: the other replica applied them", n, err)
	}
	appendN(t, pool, "s", 5, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := a.Step(context.Background())
		if err != nil || n > 1 {
			t.Fatalf("a's step applied %d events (%v), want the 1 new one", n, err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new event was never applied")
		}
		time.Sleep(5 * time.Millisecond) // held back by a writer elsewhere on the server
	}
}

func TestWaitForSeesTheWrite(t *testing.T) {
	pool, p := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := range 50 {
		pos := appendN(t, pool, "s", i, 1)
		// Generous: a test of another package filling a million-row
		// table holds a transaction open for seconds, and transaction
		// ids are cluster-wide, so the write may be held back that long.
		wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := p.WaitFor(wctx, pos)
		wcancel()
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if got := countOf(t, pool, "s"); got != i+1 {
			t.Fatalf("after WaitFor the model shows %d events, want %d: read-your-writes broken", got, i+1)
		}
	}
}

// Rebuild while writes continue: readers see the old table until the swap,
// and afterwards a complete one that the live projector keeps following.
func TestRebuildSwapsInACompleteModel(t *testing.T) {
	pool, p := setup(t)
	appendN(t, pool, "a", 0, 30)
	drain(t, p)
	// Corrupt the live model: the rebuild must not keep anything of it.
	if _, err := pool.Exec(context.Background(), `UPDATE counts SET n = 999`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writes during the rebuild
		defer wg.Done()
		appendN(t, pool, "b", 0, 40)
	}()
	if err := p.RequestRebuild(); err != nil {
		t.Fatal(err)
	}
	if err := p.RequestRebuild(); err != projection.ErrRebuildRunning {
		t.Fatalf("second request: %v, want ErrRebuildRunning", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for p.Status().Rebuild.Running {
		if countOf(t, pool, "a") != 999 && countOf(t, pool, "a") != 30 {
			t.Fatalf("readers saw a half-built model: a=%d", countOf(t, pool, "a"))
		}
		if time.Now().After(deadline) {
			t.Fatal("rebuild did not finish")
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	if s := p.Status(); s.Rebuild.Error != "" || s.Rebuild.Applied == 0 {
		t.Fatalf("rebuild status %+v", s.Rebuild)
	}
	eventually(t, func() bool { return countOf(t, pool, "a") == 30 && countOf(t, pool, "b") == 40 })
}

func eventually(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatchWakesOnlyForNewerEventsOfItsStream(t *testing.T) {
	pool, p := setup(t)
	appendN(t, pool, "watched", 0, 2)
	drain(t, p)
	if !p.Active() {
		t.Fatal("a projector that just applied events must report itself active")
	}
	seen, unwatchSeen := p.Watch("watched", 2) // waits for version 3
	defer unwatchSeen()
	typed, unwatchTyped := p.Watch("watched", 2, "Tock") // waits for a Tock
	defer unwatchTyped()
	other, unwatchOther := p.Watch("other", 0)
	defer unwatchOther()

	appendN(t, pool, "unrelated", 0, 3)
	drain(t, p)
	select {
	case <-seen:
		t.Fatal("woken by another stream's events")
	case <-other:
		t.Fatal("woken by another stream's events")
	default:
	}

	appendN(t, pool, "watched", 2, 1)
	drain(t, p)
	select {
	case <-seen:
	default:
		t.Fatal("not woken by the stream's next event")
	}
	select {
	case <-other:
		t.Fatal("a stream with no new event woke")
	case <-typed:
		t.Fatal("a watch for Tock woke on a Tick")
	default:
	}

	// A stopped watch is forgotten: its stream's events close nothing.
	stopped, unwatch := p.Watch("stopped", 0)
	unwatch()
	appendN(t, pool, "stopped", 0, 1)
	drain(t, p)
	select {
	case <-stopped:
		t.Fatal("a stopped watch was woken")
	default:
	}
}

// picky is a read model that cannot apply "Garbled" events (they do not
// decode) and whose table refuses "Huge" ones (a value past the column's
// range, found only when the batch runs).
type picky struct{ counts }

func (p picky) Apply(b *pgx.Batch, table string, e eventstore.Event) error {
	switch e.Type {
	case "Garbled":
		b.Queue(`SELECT 1/0`) // queued before the failure: must not run
		return fmt.Errorf("decode %s: unexpected end of JSON input", e.Type)
	case "Huge":
		b.Queue(fmt.Sprintf(`UPDATE %s SET n = 2147483648 WHERE stream_id = $1`, pgx.Identifier{table}.Sanitize()), e.StreamID)
		return nil
	}
	return p.counts.Apply(b, table, e)
}

// An event the read model cannot apply is parked (recorded with why, and
// skipped); the events behind it, in its batch and after, are applied.
// One bad event must not freeze the read model, and with it the saga
// watchdog that reads it.
func TestEventsThatCannotApplyAreParked(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations(), "projection": projection.Migrations()})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE counts (stream_id text PRIMARY KEY, version bigint NOT NULL, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	p, err := projection.New(pool, picky{}, observe.Discard(), projection.Config{Name: "counts", Table: "counts", BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	add := func(stream string, version int64, typ string) {
		t.Helper()
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := eventstore.Append(ctx, tx, stream, version, eventstore.NewEvent{Type: typ, Data: json.RawMessage(`{}`), OccurredAt: time.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	add("a", 0, "Tick")
	add("a", 1, "Garbled")
	add("a", 2, "Tick")
	add("b", 0, "Tick")
	add("b", 1, "Huge")
	add("b", 2, "Tick")
	add("c", 0, "Tick")
	drain(t, p)
	for stream, want := range map[string]int{"a": 2, "b": 2, "c": 1} {
		if n := countOf(t, pool, stream); n != want {
			t.Errorf("stream %s: %d events applied, want %d", stream, n, want)
		}
	}
	rows, _ := pool.Query(ctx, `SELECT stream_id || '/' || version || ' ' || type FROM projection_parked WHERE name = 'counts' ORDER BY position`)
	parked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(parked) != "[a/2 Garbled b/2 Huge]" {
		t.Fatalf("parked %v, want [a/2 Garbled b/2 Huge]", parked)
	}
}
