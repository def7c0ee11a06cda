package readmodel_test

import (
	"context"
	"fmt"
	"io/fs"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/platform/projection"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/internal/ordersdb"
	"github.com/example/sagasuite/services/orders/internal/readmodel"
)

type env struct {
	pool    *pgxpool.Pool
	repo    *ordersdb.Repo
	proj    *projection.Projector
	queries *readmodel.Queries
}

func setup(t testing.TB) env {
	t.Helper()
	pool := postgrestest.Pool(t, map[string]fs.FS{"orders": ordersdb.Migrations(), "eventstore": eventstore.Migrations(),
		"outbox": outbox.Migrations()})
	repo, err := ordersdb.New(pool, observe.Discard(), ordersdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	queries, err := readmodel.Setup(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	proj, err := projection.New(pool, readmodel.Projection{}, observe.Discard(), projection.Config{Name: readmodel.Name, Table: readmodel.Table})
	if err != nil {
		t.Fatal(err)
	}
	return env{pool, repo, proj, queries}
}

func (e env) place(t testing.TB, id string, at time.Time) int64 {
	t.Helper()
	_, pos, err := e.repo.Create(context.Background(), order.Place(id, "c-"+id[:1], []order.Item{{SKU: "A", Quantity: 1, UnitPriceCents: 100}}, "4242", at), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func (e env) finish(t testing.TB, id string, decide func(o *order.Order) (order.Event, error)) int64 {
	t.Helper()
	var pos int64
	err := pgx.BeginFunc(context.Background(), e.pool, func(tx pgx.Tx) error {
		var err error
		_, pos, err = e.repo.UpdateTx(context.Background(), tx, id, func(o *order.Order) (ordersdb.Decision, error) {
			ev, err := decide(o)
			return ordersdb.Decision{Events: []order.Event{ev}}, err
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// The read model matches the aggregates, schema-1 events included.
func TestReadModelMatchesTheAggregates(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	e.place(t, "a1", now)
	e.place(t, "b1", now.Add(time.Millisecond))
	e.finish(t, "a1", func(o *order.Order) (order.Event, error) { return o.Confirm(now.Add(time.Second)) })
	e.finish(t, "a1", func(o *order.Order) (order.Event, error) { return o.AddNote("n", "x", now.Add(2*time.Second)), nil })
	pos := e.finish(t, "b1", func(o *order.Order) (order.Event, error) {
		return o.Cancel(order.ReasonCardDeclined, now.Add(time.Second))
	})
	if _, err := e.pool.Exec(ctx, `INSERT INTO events (stream_id, version, type, schema_version, data, metadata, occurred_at)
		VALUES ('order-old', 1, 'OrderPlaced', 1, '{"order_id":"old","customer_id":"c","items":[],"total_cents":5,"card_last4":"4242"}', '{}', now())`); err != nil {
		t.Fatal(err)
	}
	run(t, e.proj)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.proj.WaitFor(wctx, pos); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "b1", "old"} {
		var got order.Order
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if got, err = e.queries.Get(ctx, id); err == nil {
				break
			}
		}
		// Field for field: Await answers a waiting client with the
		// order as read folded with the projector's next event
		// (order.Apply), in place of reading it again.
		want, _ := e.repo.Current(ctx, id)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: read model %+v (%v)\naggregate  %+v", id, got, err, want)
		}
	}
}

func run(t testing.TB, p *projection.Projector) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// BenchmarkRebuild100k rebuilds order_summaries from 100,002 events
// (33,334 orders: placed, a note, a terminal status) and reports events/s.
// Target: at least 20,000 events/s. Run: go test -run x -bench Rebuild -benchtime 1x
func BenchmarkRebuild100k(b *testing.B) {
	e := setup(b)
	ctx := context.Background()
	const orders = 33_334
	rows := make([][]any, 0, orders*3)
	at := time.Now().Add(-time.Hour)
	for i := range orders {
		id := fmt.Sprintf("order-%06d", i)
		placed := fmt.Sprintf(`{"order_id":"%06d","customer_id":"c-%d","items":[{"sku":"SKU-0001","quantity":1,"unit_price_cents":100}],"total_cents":100,"currency":"USD","card_last4":"4242"}`, i, i%100)
		rows = append(rows,
			[]any{id, int64(1), "OrderPlaced", int32(2), []byte(placed), []byte(`{}`), at},
			[]any{id, int64(2), "OrderNoteAdded", int32(1), []byte(`{"text":"n","author":"a"}`), []byte(`{}`), at},
			[]any{id, int64(3), "OrderConfirmed", int32(1), []byte(`{}`), []byte(`{}`), at})
	}
	if _, err := e.pool.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"stream_id", "version", "type", "schema_version", "data", "metadata", "occurred_at"},
		pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := e.proj.Rebuild(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(rows))/time.Since(start).Seconds(), "events/s")
	}
	b.StopTimer()
	var n int
	_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM order_summaries WHERE status = 'CONFIRMED' AND notes = 1`).Scan(&n)
	if n != orders {
		b.Fatalf("rebuilt %d complete orders, want %d", n, orders)
	}
}

// BenchmarkProjectorLagAt300OrdersPerSecond writes 300 orders/s, each
// placed and then confirmed (600 events/s), for 10 s while the projector
// runs, and reports how long each write took to reach the read model.
// Target: under 1 s. Run: go test -run x -bench ProjectorLag -benchtime 1x
func BenchmarkProjectorLagAt300OrdersPerSecond(b *testing.B) {
	e := setup(b)
	run(b, e.proj)
	ctx := context.Background()
	for b.Loop() {
		var mu sync.Mutex
		var lags []time.Duration
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / 300)
		end := time.Now().Add(10 * time.Second)
		for i := 0; time.Now().Before(end); i++ {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("o%07d", i)
				e.place(b, id, time.Now())
				pos := e.finish(b, id, func(o *order.Order) (order.Event, error) { return o.Confirm(time.Now()) })
				written := time.Now()
				wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if err := e.proj.WaitFor(wctx, pos); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lags = append(lags, time.Since(written))
				mu.Unlock()
			}()
		}
		tick.Stop()
		wg.Wait()
		sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
		p := func(q float64) float64 {
			return float64(lags[min(len(lags)-1, int(q*float64(len(lags))))].Microseconds()) / 1000
		}
		b.ReportMetric(p(0.5), "p50-lag-ms")
		b.ReportMetric(p(0.99), "p99-lag-ms")
		b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-lag-ms")
		b.ReportMetric(float64(len(lags))/10, "orders/s")
	}
}
