package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/kafkatest"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/observe/observetest"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/postgrestest"
)

func newEvent(t *testing.T, key string, n int) kafka.Event {
	t.Helper()
	e, err := kafka.NewEvent("test.event", "/test", key, map[string]int{"n": n})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// runRelay starts a relay on pool until the test ends.
func runRelay(t *testing.T, pool *pgxpool.Pool, pub outbox.Publisher, cfg outbox.RelayConfig) *outbox.Relay {
	t.Helper()
	relay, err := outbox.NewRelay(pool, pub, observe.Discard(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return relay
}

func write(t *testing.T, ctx context.Context, pool interface {
	Begin(context.Context) (pgx.Tx, error)
}, msgs ...outbox.Message) {
	t.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Write(ctx, tx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// Rows reach Kafka in order, promptly (woken by the writer's Wake, not the
// 1 h poll set here), with the trace of the writing transaction, and are
// removed.
func TestRelayPublishesInOrderWithTrace(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"outbox": outbox.Migrations()})
	brokers := kafkatest.Brokers(t)
	topic := fmt.Sprintf("test.outbox.%d", time.Now().UnixNano())
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, brokers, 3, topic); err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	pub, err := kafka.NewPublisher(observetest.With(tp, nil), kafka.PublisherConfig{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	relay := runRelay(t, pool, pub, outbox.RelayConfig{PollInterval: time.Hour, BatchSize: 7})

	txCtx, span := tp.Tracer("test").Start(ctx, "command")
	const n = 30
	var sent []kafka.Event
	for i := range n {
		e := newEvent(t, "same-key", i)
		sent = append(sent, e)
		write(t, txCtx, pool, outbox.Message{Topic: topic, Event: e})
		relay.Wake()
	}
	span.End()

	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, GroupID: "g-" + topic,
		StartOffset: kafkago.FirstOffset, MaxWait: 50 * time.Millisecond, SessionTimeout: 6 * time.Second})
	defer r.Close()
	readCtx, readCancel := context.WithTimeout(ctx, 10*time.Second)
	defer readCancel()
	for i := range n {
		m, err := r.ReadMessage(readCtx)
		if err != nil {
			t.Fatalf("message %d: %v (the relay must wake on Wake, not poll)", i, err)
		}
		var id, traceparent string
		for _, h := range m.Headers {
			switch h.Key {
			case "ce_id":
				id = string(h.Value)
			case "traceparent":
				traceparent = string(h.Value)
			}
		}
		if id != sent[i].ID {
			t.Fatalf("message %d is %s, want %s: order lost", i, id, sent[i].ID)
		}
		if want := span.SpanContext().TraceID().String(); len(traceparent) < 35 || traceparent[3:35] != want {
			t.Fatalf("message %d traceparent %q, want trace %s", i, traceparent, want)
		}
	}
	emptied(t, pool)
}

// emptied waits until the outbox is empty: every published row deleted.
func emptied(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var left int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d published rows left in the outbox", left)
		}
	}
}

type failingPublisher struct {
	mu    sync.Mutex
	fails int
	got   []kafka.Event
}

func (p *failingPublisher) Publish(ctx context.Context, topic string, events ...kafka.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fails > 0 {
		p.fails--
		return errors.New("broker down")
	}
	p.got = append(p.got, events...)
	return nil
}

func (p *failingPublisher) published() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

// A failed publish keeps the rows; a rolled-back transaction leaves none;
// two relays on one database publish each row once.
func TestRelayKeepsRowsUntilPublished(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"outbox": outbox.Migrations()})
	ctx := context.Background()
	pub := &failingPublisher{fails: 1}
	a, _ := outbox.NewRelay(pool, pub, observe.Discard(), outbox.RelayConfig{})
	b, _ := outbox.NewRelay(pool, pub, observe.Discard(), outbox.RelayConfig{})

	write(t, ctx, pool, outbox.Message{Topic: "t", Event: newEvent(t, "k", 1)}, outbox.Message{Topic: "t", Event: newEvent(t, "k", 2)})
	tx, _ := pool.Begin(ctx)
	if err := outbox.Write(ctx, tx, outbox.Message{Topic: "t", Event: newEvent(t, "k", 3)}); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)

	if _, err := a.PublishBatch(ctx); err == nil {
		t.Fatal("want the publisher's error")
	}
	var wg sync.WaitGroup
	for _, r := range []*outbox.Relay{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.PublishBatch(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(pub.got) != 2 {
		t.Fatalf("published %d events, want exactly the 2 committed ones once", len(pub.got))
	}
}

// A relay woken while another replica's relay reads the table (holding
// the lock, maybe having read before this commit) looks again until it
// has looked itself, instead of leaving the row to its poll (1 h here).
func TestRelayLockedOutLooksAgain(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"outbox": outbox.Migrations()})
	ctx := context.Background()
	pub := &failingPublisher{}
	relay, err := outbox.NewRelay(pool, pub, observe.Discard(), outbox.RelayConfig{PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The other replica's relay, reading the table: it holds the lock.
	other, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(0x6f7574626f78)); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	defer func() { cancel(); <-done }()
	write(t, ctx, pool, outbox.Message{Topic: "t", Event: newEvent(t, "k", 1)})
	relay.Wake()
	time.Sleep(100 * time.Millisecond)
	if n := pub.published(); n != 0 {
		t.Fatalf("published %d while another relay held the lock", n)
	}
	if _, err := other.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(0x6f7574626f78)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for pub.published() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the row waits for the poll: the relay gave up when it found the lock taken")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Rows no one handed over (a replica that crashed between its commit and
// its handover, or stopped for good) are published by whichever relay
// reads the table next, once they are old enough not to be a live
// replica's on their way (2 s), and by only one of two relays reading.
func TestRelaysPublishRowsNoOneHandedOverOnce(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"outbox": outbox.Migrations()})
	ctx := context.Background()
	pub := &failingPublisher{}
	cfg := outbox.RelayConfig{PollInterval: 50 * time.Millisecond}
	runRelay(t, pool, pub, cfg)
	runRelay(t, pool, pub, cfg)
	time.Sleep(200 * time.Millisecond) // past the reads of every row on start
	const n = 20
	written := time.Now()
	for i := range n {
		write(t, ctx, pool, outbox.Message{Topic: "t", Event: newEvent(t, "k", i)}) // no Wake: the writer is gone
	}
	for deadline := time.Now().Add(15 * time.Second); pub.published() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("published %d of the %d rows no one handed over", pub.published(), n)
		}
	}
	if took := time.Since(written); took < 1500*time.Millisecond {
		t.Fatalf("published after %v: a young row may be a live replica's, still on its way", took)
	}
	time.Sleep(200 * time.Millisecond) // anything published twice shows now
	pub.mu.Lock()
	defer pub.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range pub.got {
		if seen[e.ID] {
			t.Errorf("%s published twice", e.ID)
		}
		seen[e.ID] = true
	}
	if len(pub.got) != n {
		t.Fatalf("published %d, want the %d rows once each", len(pub.got), n)
	}
}

// Rows handed over that the broker refused are in the table, and go out
// once it takes them again: the failure makes the relay read every row,
// not only those old enough for its poll (an hour here).
func TestRelayPublishesHandedRowsTheBrokerRefused(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"outbox": outbox.Migrations()})
	ctx := context.Background()
	pub := &failingPublisher{fails: 3}
	relay := runRelay(t, pool, pub, outbox.RelayConfig{PollInterval: time.Hour})
	time.Sleep(200 * time.Millisecond) // past the read of every row on start
	e := newEvent(t, "k", 1)
	if err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		return relay.Write(ctx, tx, outbox.Message{Topic: "t", Event: e})
	}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); pub.published() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a row the broker refused waits for the poll")
		}
	}
	time.Sleep(100 * time.Millisecond) // anything published twice shows now
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.got) != 1 || pub.got[0].ID != e.ID {
		t.Fatalf("published %d, want the refused row once", len(pub.got))
	}
	emptied(t, pool)
}

// slowPublisher takes its time, like a broker under load.
type slowPublisher struct {
	delay   time.Duration
	calling chan struct{}
}

func (p *slowPublisher) Publish(ctx context.Context, topic string, events ...kafka.Event) error {
	select {
	case p.calling <- struct{}{}:
	default:
	}
	time.Sleep(p.delay)
	return nil
}

// The relay calls Kafka with no transaction open: a slow broker must not
// leave a connection "idle in transaction" (holding a snapshot that stops
// vacuum, for as long as the broker takes).
func TestRelayHoldsNoTransactionWhilePublishing(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"outbox": outbox.Migrations()})
	ctx := context.Background()
	pub := &slowPublisher{delay: 500 * time.Millisecond, calling: make(chan struct{}, 1)}
	r, _ := outbox.NewRelay(pool, pub, observe.Discard(), outbox.RelayConfig{})
	write(t, ctx, pool, outbox.Message{Topic: "t", Event: newEvent(t, "k", 1)})
	done := make(chan error, 1)
	go func() {
		_, err := r.PublishBatch(ctx)
		done <- err
	}()
	<-pub.calling
	time.Sleep(100 * time.Millisecond)
	var idleInTx int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&idleInTx); err != nil {
		t.Fatal(err)
	}
	if idleInTx != 0 {
		t.Fatalf("%d connections idle in transaction while the relay called Kafka", idleInTx)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows left after publishing (%v)", left, err)
	}
}

// Each published batch has a span linked to the trace of every message in
// it (the producer spans themselves join those traces).
func TestRelaySpanLinksTheMessagesTraces(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"outbox": outbox.Migrations()})
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	wctx, writer := tp.Tracer("test").Start(ctx, "the request that wrote it")
	write(t, wctx, pool, outbox.Message{Topic: "t", Event: newEvent(t, "k", 1)}) // keeps wctx's trace context
	writer.End()
	r, _ := outbox.NewRelay(pool, &failingPublisher{}, observetest.With(tp, nil), outbox.RelayConfig{})
	if n, err := r.PublishBatch(ctx); err != nil || n != 1 {
		t.Fatalf("published %d (%v)", n, err)
	}
	for _, s := range spans.Ended() {
		if s.Name() == "outbox relay" {
			if len(s.Links()) != 1 || s.Links()[0].SpanContext.TraceID() != writer.SpanContext().TraceID() {
				t.Fatalf("relay span links %v, want the writer's trace %s", s.Links(), writer.SpanContext().TraceID())
			}
			return
		}
	}
	t.Fatal("no relay span")
}

// reads counts the relay's reads of the outbox table, and its deletes.
type reads struct{ n, deletes atomic.Int64 }

func (r *reads) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.count(d.SQL)
	return ctx
}
func (r *reads) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *reads) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (r *reads) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.count(d.SQL)
}
func (r *reads) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
func (r *reads) count(sql string) {
	if strings.Contains(sql, "FROM outbox WHERE id <> ALL") {
		r.n.Add(1)
	}
	if strings.Contains(sql, "DELETE FROM outbox WHERE id = ANY") {
		r.deletes.Add(1)
	}
}

// countedPool is a pool whose reads of the outbox table, and deletes from
// it, are counted.
func countedPool(t *testing.T) (*pgxpool.Pool, *reads) {
	t.Helper()
	cfg := postgrestest.Pool(t, map[string]fs.FS{"outbox": outbox.Migrations()}).Config()
	counted := &reads{}
	cfg.ConnConfig.Tracer = counted
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, counted
}

// countedRelay runs a relay (polling once an hour) on a countedPool.
func countedRelay(t *testing.T) (*pgxpool.Pool, *reads, *failingPublisher, *outbox.Relay) {
	t.Helper()
	pool, counted := countedPool(t)
	pub := &failingPublisher{}
	return pool, counted, pub, runRelay(t, pool, pub, outbox.RelayConfig{PollInterval: time.Hour})
}

// Rows written with the relay's Write are handed to it at commit and
// published as they are, in order, without the relay reading them back:
// one read of the table on start, not one read per commit (as when it
// read the table on every wake-up). A rolled-back transaction hands over
// nothing.
func TestRelayPublishesHandedRowsWithoutReadingThem(t *testing.T) {
	pool, counted, pub, relay := countedRelay(t)
	ctx := context.Background()

	const n = 100
	var sent []kafka.Event
	for i := range n {
		e := newEvent(t, "same-key", i)
		if err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			return relay.Write(ctx, tx, outbox.Message{Topic: "t", Event: e})
		}); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, e)
		// As a saga's hops at a low rate: the next write waits for the
		// last to be published, so no read serves several.
		for deadline := time.Now().Add(5 * time.Second); pub.published() <= i && time.Now().Before(deadline); {
			time.Sleep(100 * time.Microsecond)
		}
		if i == n/2 {
			err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
				if err := relay.Write(ctx, tx, outbox.Message{Topic: "t", Event: newEvent(t, "same-key", -1)}); err != nil {
					return err
				}
				return errors.New("rolled back")
			})
			if err == nil {
				t.Fatal("want the rollback")
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for pub.published() < n {
		if time.Now().After(deadline) {
			t.Fatalf("published %d of %d", pub.published(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // anything published twice shows now
	pub.mu.Lock()
	got := append([]kafka.Event(nil), pub.got...)
	pub.mu.Unlock()
	if len(got) != n {
		t.Fatalf("published %d, want the %d committed once each", len(got), n)
	}
	for i, e := range got {
		if e.ID != sent[i].ID || string(e.Data) != string(sent[i].Data) || e.Trace == nil {
			t.Fatalf("message %d is %s %s, want %s %s: order or content lost", i, e.ID, e.Data, sent[i].ID, sent[i].Data)
		}
	}
	if r := counted.n.Load(); r > n/5 {
		t.Fatalf("the relay read the table %d times for %d rows handed to it: it reads them back", r, n)
	}
	t.Logf("%d reads of the table for %d rows", counted.n.Load(), n)
	emptied(t, pool)
}

// Two replicas writing at once each publish their own rows, in order,
// once, without reading the table for the other's and without a delete
// per row. Before, one held the lock and read the table every 5 ms for
// the other's rows, which that replica's relay could not publish: about
// 300 reads here.
func TestReplicasPublishTheirOwnRowsWithoutReadingTheTable(t *testing.T) {
	pool, counted := countedPool(t)
	pub := &failingPublisher{}
	replicas := []*outbox.Relay{runRelay(t, pool, pub, outbox.RelayConfig{}), runRelay(t, pool, pub, outbox.RelayConfig{})}
	time.Sleep(200 * time.Millisecond) // past the reads of every row on start
	readsBefore, deletesBefore, began := counted.n.Load(), counted.deletes.Load(), time.Now()
	ctx, stop := context.Background(), time.Now().Add(1500*time.Millisecond)
	var wg sync.WaitGroup
	var written atomic.Int64
	for w := range 8 {
		relay := replicas[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				e := newEvent(t, fmt.Sprintf("k%d", w), i)
				if err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
					return relay.Write(ctx, tx, outbox.Message{Topic: "t", Event: e})
				}); err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Second); int64(pub.published()) < written.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("published %d of %d", pub.published(), written.Load())
		}
	}
	time.Sleep(100 * time.Millisecond) // anything published twice shows now
	reads, deletes, took := counted.n.Load()-readsBefore, counted.deletes.Load()-deletesBefore, time.Since(began)
	pub.mu.Lock()
	next := map[string]int{}
	for _, e := range pub.got {
		var n struct{ N int }
		if err := json.Unmarshal(e.Data, &n); err != nil {
			t.Fatal(err)
		}
		if n.N != next[e.Key] {
			t.Fatalf("key %s: published %d after %d: out of order, lost or twice", e.Key, n.N, next[e.Key]-1)
		}
		next[e.Key]++
	}
	got := len(pub.got)
	pub.mu.Unlock()
	if int64(got) != written.Load() {
		t.Fatalf("published %d, want the %d written once each", got, written.Load())
	}
	// Reads: each relay's poll, once a second; a read every 5 ms is about
	// 300 here. Deletes: each relay's, at most every 100 ms; one a row is
	// thousands.
	maxReads, maxDeletes := 2*int64(took/time.Second)+4, 2*int64(took/(100*time.Millisecond))+4
	if reads > maxReads || deletes > maxDeletes {
		t.Fatalf("%d reads of the table and %d deletes in %v for %d rows two replicas wrote and handed over; want at most %d and %d",
			reads, deletes, took, got, maxReads, maxDeletes)
	}
	t.Logf("%d rows in %v: %d reads, %d deletes", got, took, reads, deletes)
	emptied(t, pool)
}
