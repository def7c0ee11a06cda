package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/example/sagasuite/platform/observe/observetest"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/postgrestest"
)

// Statements under a caller's span get client spans (BEGIN excepted, and
// skipping it must not end the caller's span); every statement is timed
// in db.client.operation.duration; the pool reports its connections.
func TestPoolIsInstrumented(t *testing.T) {
	admin, name := postgrestest.NewDatabase(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, admin, name, observetest.With(tp, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))), postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	rctx, request := tp.Tracer("test").Start(ctx, "request")
	if err := pgx.BeginFunc(rctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(rctx, `SELECT 1`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !request.IsRecording() {
		t.Fatal("the caller's span was ended by the instrumentation")
	}
	request.End()
	names := map[string]int{}
	for _, s := range spans.Ended() {
		names[s.Name()]++
		if s.Name() != "request" && s.Parent().SpanID() != request.SpanContext().SpanID() {
			t.Errorf("span %q is not a child of the request", s.Name())
		}
	}
	if names["SELECT "+name] != 1 || names["COMMIT "+name] != 1 || names["BEGIN "+name] != 0 {
		t.Fatalf("spans %v: want SELECT and COMMIT, no BEGIN", names)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			found[m.Name] = true
		}
	}
	for _, want := range []string{"db.client.operation.duration", "db.client.connection.count", "db.client.connection.pending_requests"} {
		if !found[want] {
			t.Errorf("%s not recorded (have %v)", want, found)
		}
	}
}

// A transaction of InTx traces a span per batch, named after what it
// carries and with its statements' text; its BEGIN and the statements of
// a batch have no span of their own.
func TestInTxBatchesAreNamedSpans(t *testing.T) {
	admin, name := postgrestest.NewDatabase(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	ctx := context.Background()
	pool, err := postgres.Open(ctx, admin, name, observetest.With(tp, nil), postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rctx, request := tp.Tracer("test").Start(ctx, "request")
	if err := postgres.InTx(rctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(rctx, `SELECT 1`); err != nil {
			return err
		}
		return postgres.Later(rctx, tx, `SELECT 2`)
	}); err != nil {
		t.Fatal(err)
	}
	request.End()
	got := map[string]string{}
	for _, s := range spans.Ended() {
		for _, a := range s.Attributes() {
			if a.Key == "db.query.text" {
				got[s.Name()] = a.Value.AsString()
			}
		}
		if _, ok := got[s.Name()]; !ok {
			got[s.Name()] = ""
		}
	}
	want := map[string]string{"request": "", "BATCH SELECT " + name: "SELECT 1", "BATCH SELECT COMMIT " + name: "SELECT 2; COMMIT"}
	if len(got) != len(want) {
		t.Fatalf("spans %q, want %q", got, want)
	}
	for n, text := range want {
		if g, ok := got[n]; !ok || g != text {
			t.Fatalf("spans %q, want %q", got, want)
		}
	}
}
