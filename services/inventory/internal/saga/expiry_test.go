package saga_test

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/example/sagasuite/platform/observe/observetest"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/inventory/internal/app"
	"github.com/example/sagasuite/services/inventory/internal/catalog"
	"github.com/example/sagasuite/services/inventory/internal/inventorydb"
	"github.com/example/sagasuite/services/inventory/internal/saga"
)

// The expiry compensation joins the order's trace: its span is in the
// trace of the saga step that reserved the stock, not a new one.
func TestExpiryJoinsTheOrdersTrace(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"inventory": inventorydb.Migrations(), "outbox": outbox.Migrations()})
	store := inventorydb.New(pool)
	ctx := context.Background()
	if _, err := store.SeedIfEmpty(ctx, catalog.Seed(10)); err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	rctx, reserveSpan := tp.Tracer("test").Start(ctx, "process orders.events")
	if err := pgx.BeginFunc(rctx, pool, func(tx pgx.Tx) error {
		_, err := app.Reserve(rctx, store.In(tx), "o-1", []catalog.Item{{SKU: "SKU-0001", Quantity: 2}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	reserveSpan.End()

	x, err := saga.NewExpiry(store, observetest.With(tp, nil), saga.ExpiryConfig{TTL: time.Nanosecond, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if n, err := x.Scan(ctx, 0); err != nil || n != 1 {
		t.Fatalf("scan released %d (%v), want 1", n, err)
	}
	for _, s := range spans.Ended() {
		if s.Name() == "compensate: expire reservation" {
			if s.SpanContext().TraceID() != reserveSpan.SpanContext().TraceID() {
				t.Fatalf("expiry span in trace %s, want the order's %s", s.SpanContext().TraceID(), reserveSpan.SpanContext().TraceID())
			}
			if s.Parent().SpanID() != reserveSpan.SpanContext().SpanID() {
				t.Fatalf("expiry span's parent %s, want the reserving step %s", s.Parent().SpanID(), reserveSpan.SpanContext().SpanID())
			}
			return
		}
	}
	t.Fatal("no expiry span")
}
