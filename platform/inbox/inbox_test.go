package inbox_test

import (
	"context"
	"errors"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/postgrestest"
)

func TestHandlerAppliesEachMessageOnce(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"inbox": inbox.Migrations()})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	h := inbox.Handler(pool, "test", func(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
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
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
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
	if dups != 9 {
		t.Fatalf("inbox.duplicates = %d, want the 9 redeliveries", dups)
	}
	// Another consumer has its own record of the same ID.
	other := inbox.Handler(pool, "other", func(ctx context.Context, tx pgx.Tx, m kafka.Message) error { return nil }, nil)
	if err := other.Handle(ctx, msg("m-1")); err != nil {
		t.Fatal(err)
	}
}

func TestFailedHandlerRecordsNothing(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"inbox": inbox.Migrations()})
	ctx := context.Background()
	calls := 0
	h := inbox.Handler(pool, "test", func(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
		calls++
		if calls == 1 {
			return errors.New("boom")
		}
		return nil
	}, nil)
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
	pool := postgrestest.Pool(t, map[string]fs.FS{"inbox": inbox.Migrations()})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO inbox (consumer, event_id, processed_at)
		SELECT 'c', 'old-' || g, now() - interval '10 days' FROM generate_series(1, 12000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO inbox (consumer, event_id) VALUES ('c', 'recent')`); err != nil {
		t.Fatal(err)
	}
	n, err := inbox.Prune(ctx, pool, time.Now().Add(-7*24*time.Hour))
	if err != nil || n != 12000 {
		t.Fatalf("pruned %d (%v), want 12000", n, err)
	}
	var left int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM inbox`).Scan(&left)
	if left != 1 {
		t.Fatalf("%d IDs left, want the recent one", left)
	}
}
