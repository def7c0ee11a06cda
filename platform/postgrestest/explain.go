package postgrestest

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Statement is one SQL statement a pool ran, with its arguments.
type Statement struct {
	SQL  string
	Args []any
}

// Recorder keeps every statement run through the pools it traces.
type Recorder struct {
	mu    sync.Mutex
	stmts []Statement
}

// TraceQueryStart implements pgx.QueryTracer.
func (r *Recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.record(data.SQL, data.Args)
	return ctx
}

func (r *Recorder) record(sql string, args []any) {
	r.mu.Lock()
	r.stmts = append(r.stmts, Statement{SQL: sql, Args: args})
	r.mu.Unlock()
}

// TraceQueryEnd implements pgx.QueryTracer.
func (r *Recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart implements pgx.BatchTracer: the statements of a batch
// (pgx.Batch, and postgres.InTx's statements sent with the next one or
// the commit) are recorded as they run, like the others.
func (r *Recorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

// TraceBatchQuery implements pgx.BatchTracer.
func (r *Recorder) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	r.record(data.SQL, data.Args)
}

// TraceBatchEnd implements pgx.BatchTracer.
func (r *Recorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// Statements returns what was recorded, each distinct SQL text once (with
// the arguments of its first run).
func (r *Recorder) Statements() []Statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Statement
	seen := map[string]bool{}
	for _, s := range r.stmts {
		if !seen[s.SQL] {
			seen[s.SQL] = true
			out = append(out, s)
		}
	}
	return out
}

// Recording returns a pool on pool's database whose statements rec
// records, closed when t ends: run the code under test through it, then
// check the plans with NoSeqScans.
func Recording(t testing.TB, pool *pgxpool.Pool) (*pgxpool.Pool, *Recorder) {
	t.Helper()
	rec := &Recorder{}
	cfg := pool.Config()
	cfg.ConnConfig.Tracer = rec
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, rec
}

// Large is Pool with large tables: insert (an INSERT … SELECT …
// generate_series) fills them and tables are ANALYZEd, so that the planner
// plans with the statistics of a large table. Filling takes seconds: under
// -short the test is skipped.
func Large(t testing.TB, sets map[string]fs.FS, insert string, tables ...string) *pgxpool.Pool {
	t.Helper()
	if testing.Short() {
		t.Skip("fills large tables")
	}
	pool := Pool(t, sets)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Filling may outlast the pool's statement_timeout on a slow machine.
	if _, err := pool.Exec(ctx, "SET statement_timeout = 0; "+insert); err != nil {
		t.Fatalf("fill: %v", err)
	}
	for _, table := range tables {
		if _, err := pool.Exec(ctx, "ANALYZE "+pgx.Identifier{table}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

// NoSeqScans EXPLAINs every statement (with its recorded arguments) and
// fails t for each plan that reads one of tables with a sequential scan:
// at a million rows such a statement costs as much as the table is long,
// and gets slower with every order.
func NoSeqScans(t testing.TB, pool *pgxpool.Pool, stmts []Statement, tables ...string) {
	t.Helper()
	if len(stmts) == 0 {
		t.Fatal("no statements recorded")
	}
	ctx := context.Background()
	for _, s := range stmts {
		verb, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(s.SQL)), " ")
		switch verb {
		case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH":
		default:
			continue // begin, commit, set, …: no plan
		}
		var plan []struct {
			Plan planNode `json:"Plan"`
		}
		var raw []byte
		if err := pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+s.SQL, s.Args...).Scan(&raw); err != nil {
			t.Errorf("explain %s: %v", oneLine(s.SQL), err)
			continue
		}
		if err := json.Unmarshal(raw, &plan); err != nil || len(plan) == 0 {
			t.Fatalf("plan of %s: %v", oneLine(s.SQL), err)
		}
		for _, rel := range plan[0].Plan.seqScans() {
			if slices.Contains(tables, rel) {
				t.Errorf("sequential scan of %s in: %s\n%s", rel, oneLine(s.SQL), raw)
			}
		}
	}
}

// Plan returns the text of s's plan (EXPLAIN with its recorded
// arguments), for checks NoSeqScans does not make.
func Plan(t testing.TB, pool *pgxpool.Pool, s Statement) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "EXPLAIN "+s.SQL, s.Args...)
	if err != nil {
		t.Fatalf("explain %s: %v", oneLine(s.SQL), err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("explain %s: %v", oneLine(s.SQL), err)
	}
	return strings.Join(lines, "\n")
}

type planNode struct {
	NodeType string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Plans    []planNode `json:"Plans"`
}

func (n planNode) seqScans() []string {
	var out []string
	if n.NodeType == "Seq Scan" {
		out = append(out, n.Relation)
	}
	for _, c := range n.Plans {
		out = append(out, c.seqScans()...)
	}
	return out
}

func oneLine(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return fmt.Sprintf("%q", s)
}
