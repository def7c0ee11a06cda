package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// queryTracer makes a client span per query. Queries are parameterised, so
// the SQL text carries no values and is safe to record.
type queryTracer struct {
	tracer trace.Tracer
	db     string
}

func newQueryTracer(tp trace.TracerProvider, db string) *queryTracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &queryTracer{tracer: tp.Tracer("github.com/example/sagasuite/platform/postgres"), db: db}
}

func (t *queryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		return ctx // no span without a caller: keeps background polling out of traces
	}
	op := operation(data.SQL)
	ctx, _ = t.tracer.Start(ctx, op+" "+t.db, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNamePostgreSQL,
			semconv.DBNamespace(t.db),
			semconv.DBOperationName(op),
			semconv.DBQueryText(data.SQL),
		))
	return ctx
}

func (t *queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span := trace.SpanFromContext(ctx)
	if data.Err != nil {
		span.RecordError(data.Err)
		span.SetStatus(codes.Error, data.Err.Error())
	} else {
		span.SetAttributes(attribute.Int64("db.response.returned_rows", data.CommandTag.RowsAffected()))
	}
	span.End()
}

func operation(sql string) string {
	f := strings.Fields(sql)
	if len(f) == 0 {
		return "SQL"
	}
	return strings.ToUpper(f[0])
}
