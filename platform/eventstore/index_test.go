package eventstore_test

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/postgrestest"
)

// Every statement of the event store reads a million-event store through
// an index: a saga's latency must not grow with the history.
func TestEveryQueryUsesAnIndexAtAMillionEvents(t *testing.T) {
	ctx := context.Background()
	pool := postgrestest.Large(t, map[string]fs.FS{"eventstore": eventstore.Migrations()}, `INSERT INTO events (stream_id, version, type, data, occurred_at)
		SELECT 'order-' || (g / 5), g % 5 + 1, 'OrderNoted', '{}', now() - make_interval(secs => 1000000 - g)
		FROM generate_series(0, 999999) g;
		INSERT INTO snapshots (stream_id, version, schema_version, state)
		SELECT 'order-' || g, 5, 1, '{}' FROM generate_series(0, 199999) g`, "events", "snapshots")

	rpool, rec := postgrestest.Recording(t, pool)
	if _, err := eventstore.Load(ctx, rpool, "order-4242", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := eventstore.LoadUntil(ctx, rpool, "order-4242", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := eventstore.LoadSnapshot(ctx, rpool, "order-4242"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := eventstore.LoadLatest(ctx, rpool, "order-4242", 1); err != nil {
		t.Fatal(err)
	}
	cp, _, err := eventstore.At(ctx, rpool, 999_000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eventstore.ReadAll(ctx, rpool, cp, 500); err != nil {
		t.Fatal(err)
	}
	if _, err := eventstore.Pending(ctx, rpool, cp, 10_000); err != nil {
		t.Fatal(err)
	}
	// The idle projector's look for held-back events: one row at most.
	if _, err := eventstore.Pending(ctx, rpool, cp, 1); err != nil {
		t.Fatal(err)
	}
	// The projector's reads, after a checkpoint stored in a table.
	if _, err := pool.Exec(ctx, `CREATE TABLE checkpoints (name text PRIMARY KEY, transaction_id bigint, position bigint);
		INSERT INTO checkpoints VALUES ('p', `+fmt.Sprint(cp.TxID)+`, `+fmt.Sprint(cp.Position)+`)`); err != nil {
		t.Fatal(err)
	}
	after := eventstore.AfterStored(`SELECT transaction_id, position FROM checkpoints WHERE name = $1`)
	if events, _, err := after.Read(ctx, rpool, "p", 500); err != nil || len(events) != 500 || events[0].Position != 999_001 {
		t.Fatalf("read after the stored checkpoint: %d events from %v, %v; want 500 from 999,001", len(events), events, err)
	}
	if events, _, err := after.Read(ctx, rpool, "none", 1); err != nil || len(events) != 1 || events[0].Position != 1 {
		t.Fatalf("read with no checkpoint stored: %v, %v; want the first event", events, err)
	}
	if _, err := eventstore.Head(ctx, rpool); err != nil {
		t.Fatal(err)
	}
	tx, err := rpool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := eventstore.Append(ctx, tx, "order-4242", 5, ev("OrderNoted", 6)); err != nil {
		t.Fatal(err)
	}
	if err := eventstore.SaveSnapshot(ctx, tx, "order-4242", eventstore.Snapshot{Version: 6, Schema: 1, State: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	postgrestest.NoSeqScans(t, pool, rec.Statements(), "events", "snapshots")
	// ReadAll, the projectors' query, takes its first rows off the index
	// in order: a sort would read every event past the checkpoint.
	for _, s := range rec.Statements() {
		if strings.Contains(s.SQL, "pg_snapshot_xmin") || strings.Contains(s.SQL, "pending") {
			if plan := postgrestest.Plan(t, pool, s); strings.Contains(plan, "Sort") {
				t.Errorf("ReadAll sorts:\n%s", plan)
			}
		}
	}
}

// The idle projector's look for held-back events stays on the index in a
// young store that has no statistics yet (every make dev and benchmark
// starts so): a scan for the first row past the head cost 5 ms at 18,000
// events, and grew with each one.
func TestPendingUsesTheIndexBeforeStatistics(t *testing.T) {
	ctx := context.Background()
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	if _, err := pool.Exec(ctx, `INSERT INTO events (stream_id, version, type, data, occurred_at)
		SELECT 'order-' || g, 1, 'OrderPlaced', '{}', now() FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	cp, _, err := eventstore.At(ctx, pool, 19_999)
	if err != nil {
		t.Fatal(err)
	}
	rpool, rec := postgrestest.Recording(t, pool)
	if n, err := eventstore.Pending(ctx, rpool, cp, 1); err != nil || n != 1 {
		t.Fatalf("pending after position 19,999: %d, %v; want 1", n, err)
	}
	postgrestest.NoSeqScans(t, pool, rec.Statements(), "events")
}
