package postgres

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// poolTracer instruments a pool with github.com/exaring/otelpgx, a
// maintained pgx instrumentation: a client span per query and batch under
// the caller's span (background polling without a span makes none), and
// the semconv histogram db.client.operation.duration. It also counts the
// acquires waiting for a connection, which pgxpool.Stat does not report,
// and every statement sent, batched or not (db.client.statements), which
// otelpgx's histogram does not: it records a batch as one operation.
type poolTracer struct {
	*otelpgx.Tracer
	db         string
	pending    atomic.Int64
	statements metric.Int64Counter
	ops        sync.Map // operation name → metric.MeasurementOption
}

func newPoolTracer(tp trace.TracerProvider, mp metric.MeterProvider, db string) (*poolTracer, error) {
	statements, err := mp.Meter("github.com/example/sagasuite/platform/postgres").Int64Counter("db.client.statements",
		metric.WithDescription("Statements sent to the database, by operation (BEGIN and COMMIT included); a batch counts each of its statements: what make bench divides by the sagas."),
		metric.WithUnit("{statement}"))
	if err != nil {
		return nil, err
	}
	// Queries are parameterised, so the SQL text carries no values and is
	// safe to record.
	return &poolTracer{db: db, statements: statements, Tracer: otelpgx.NewTracer(
		otelpgx.WithTracerProvider(tp), otelpgx.WithMeterProvider(mp),
		otelpgx.WithSpanNameFunc(func(stmt string) string { return operation(stmt) + " " + db }),
		otelpgx.WithDisableAcquireTracer(), otelpgx.WithDisableConnectionDetailsInAttributes(),
		otelpgx.WithMeterAttributes(attribute.String("db.namespace", db)),
		otelpgx.WithTracerAttributes(dbSpanAttributes(db)...),
	)}, nil
}

// count adds one statement of sql's operation to db.client.statements.
func (t *poolTracer) count(ctx context.Context, sql string) { t.countOp(ctx, operation(sql), 1) }

// countOp adds n statements of operation op to db.client.statements.
func (t *poolTracer) countOp(ctx context.Context, op string, n int64) {
	attrs, ok := t.ops.Load(op)
	if !ok {
		attrs, _ = t.ops.LoadOrStore(op, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("db.namespace", t.db), attribute.String("db.operation.name", op))))
	}
	t.statements.Add(ctx, n, attrs.(metric.AddOption))
}

// dbSpanAttributes are what every database span carries beside otelpgx's
// db.system.name, so that a trace backend's service graph draws the
// server as one node, "postgresql" (the connection details, user and
// address included, stay off: WithDisableConnectionDetailsInAttributes).
// peer.service names the node; db.namespace (the database) and the older
// db.system mark the span as a database call for graph generators that
// predate db.system.name (Tempo's; the dual emission OpenTelemetry's
// semconv migration describes). deploy/compose/tempo.yaml lists them.
func dbSpanAttributes(db string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("peer.service", "postgresql"),
		attribute.String("db.namespace", db),
		attribute.String("db.system", "postgresql"),
	}
}

// skipSpan marks a query traced without a span of its own.
type skipSpan struct{}

// TraceQueryStart starts otelpgx's span, except for BEGIN: it takes no
// time worth seeing and is a tenth of a saga's spans. (COMMIT keeps its
// span: that is where the WAL flush shows.)
func (t *poolTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	t.count(ctx, data.SQL)
	if isBegin(data.SQL) {
		return context.WithValue(ctx, skipSpan{}, true)
	}
	return t.Tracer.TraceQueryStart(ctx, conn, data)
}

// TraceBatchStart starts otelpgx's span of a batch, named after the
// statements it carries ("BATCH INSERT COMMIT orders") and with their SQL
// in db.query.text, separated by "; " as the conventions say: InTx sends
// most of a transaction's statements in batches, and one span per round
// trip shows all a span per statement would, for less (otelpgx's spans
// were 6 – 9 % of a service's CPU, docs/performance.md).
func (t *poolTracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if data.Batch != nil {
		// One Add per run of an operation: a consumer batch's statements
		// repeat.
		qs := data.Batch.QueuedQueries
		for i := 0; i < len(qs); {
			op, j := operation(qs[i].SQL), i+1
			for j < len(qs) && operation(qs[j].SQL) == op {
				j++
			}
			t.countOp(ctx, op, int64(j-i))
			i = j
		}
	}
	ctx = t.Tracer.TraceBatchStart(ctx, conn, data)
	if span := trace.SpanFromContext(ctx); span.IsRecording() && data.Batch != nil {
		name := []string{"BATCH"}
		var text strings.Builder
		for _, q := range data.Batch.QueuedQueries {
			op := operation(q.SQL)
			if op == "BEGIN" {
				continue
			}
			if op != name[len(name)-1] {
				name = append(name, op)
			}
			if text.Len() > 0 {
				text.WriteString("; ")
			}
			text.WriteString(q.SQL)
		}
		span.SetName(strings.Join(append(name, t.db), " "))
		span.SetAttributes(semconv.DBQueryText(text.String()))
	}
	return ctx
}

// TraceBatchQuery makes no span: the batch's span names its statements
// and an error ends it with that error (TraceBatchEnd).
func (t *poolTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func isBegin(sql string) bool {
	return len(sql) <= 16 && strings.EqualFold(strings.TrimSpace(sql), "begin")
}

// TraceQueryEnd ends the span TraceQueryStart started, if any.
func (t *poolTracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if ctx.Value(skipSpan{}) != nil {
		return // no span was started: ending "the span in ctx" would end the caller's
	}
	t.Tracer.TraceQueryEnd(ctx, conn, data)
}

func (t *poolTracer) TraceAcquireStart(ctx context.Context, pool *pgxpool.Pool, data pgxpool.TraceAcquireStartData) context.Context {
	t.pending.Add(1)
	return t.Tracer.TraceAcquireStart(ctx, pool, data)
}

func (t *poolTracer) TraceAcquireEnd(ctx context.Context, pool *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	t.pending.Add(-1)
	t.Tracer.TraceAcquireEnd(ctx, pool, data)
}

// observePool exports the pool's state under the semconv names:
// db.client.connection.count{state=idle|used}, .max and .pending_requests.
func observePool(mp metric.MeterProvider, pool *pgxpool.Pool, t *poolTracer, db string) error {
	meter := mp.Meter("github.com/example/sagasuite/platform/postgres")
	count, err := meter.Int64ObservableUpDownCounter("db.client.connection.count",
		metric.WithDescription("Connections in the pool, by state."), metric.WithUnit("{connection}"))
	if err != nil {
		return err
	}
	maxConns, err := meter.Int64ObservableUpDownCounter("db.client.connection.max",
		metric.WithDescription("The most connections the pool opens."), metric.WithUnit("{connection}"))
	if err != nil {
		return err
	}
	pending, err := meter.Int64ObservableUpDownCounter("db.client.connection.pending_requests",
		metric.WithDescription("Requests waiting for a connection from the pool."), metric.WithUnit("{request}"))
	if err != nil {
		return err
	}
	name := attribute.String("db.client.connection.pool.name", db)
	idle := metric.WithAttributes(name, attribute.String("db.client.connection.state", "idle"))
	used := metric.WithAttributes(name, attribute.String("db.client.connection.state", "used"))
	only := metric.WithAttributes(name)
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := pool.Stat()
		o.ObserveInt64(count, int64(s.IdleConns()), idle)
		o.ObserveInt64(count, int64(s.AcquiredConns()), used)
		o.ObserveInt64(maxConns, int64(s.MaxConns()), only)
		o.ObserveInt64(pending, t.pending.Load(), only)
		return nil
	}, count, maxConns, pending)
	return err
}

// operation is sql's first word in upper case ("SELECT"), or "SQL" when
// it has none. It runs for every statement sent (the count, the span's
// name), so it allocates only for a word not already in upper case.
func operation(sql string) string {
	start := 0
	for start < len(sql) && isSpace(sql[start]) {
		start++
	}
	end := start
	upper := true
	for end < len(sql) && !isSpace(sql[end]) {
		upper = upper && !('a' <= sql[end] && sql[end] <= 'z')
		end++
	}
	switch {
	case start == end:
		return "SQL"
	case upper:
		return sql[start:end]
	}
	return strings.ToUpper(sql[start:end])
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
