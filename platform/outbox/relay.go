package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/postgres"
)

// Publisher sends events to a topic and returns once they are durable.
// *kafka.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, topic string, events ...kafka.Event) error
}

// RelayConfig tunes a Relay. The zero value is valid.
type RelayConfig struct {
	// BatchSize caps rows a read of the table publishes; 0 means 500.
	BatchSize int
	// PollInterval is how often the relay reads the table for rows no
	// one handed over (a crash's, or a replica's that stopped); 0 means
	// 1 s.
	PollInterval time.Duration
}

// Relay publishes the outbox. Several relays (replicas) may share one
// database: each publishes the rows its own process wrote, and an
// advisory lock lets one at a time read the table for the rest.
type Relay struct {
	pool      *pgxpool.Pool
	wake      *postgres.Signal
	readAll   atomic.Bool // Wake asked for a read of every row
	handed    handoff     // rows this process's Write committed, not yet published
	pub       Publisher
	cfg       RelayConfig
	log       *slog.Logger
	published metric.Int64Counter
	lag       metric.Float64Histogram
	tracer    trace.Tracer
}

// lockKey is the advisory lock id shared by every relay of a database.
const lockKey = 0x6f7574626f78 // "outbox"

// NewRelay returns a relay from pool's outbox table to pub. It reports
// through tel: outbox metrics, and a span per published batch linked to
// the trace of every message in it.
func NewRelay(pool *pgxpool.Pool, pub Publisher, tel observe.Bundle, cfg RelayConfig) (*Relay, error) {
	if pool == nil || pub == nil {
		return nil, errors.New("outbox relay: pool and publisher are required")
	}
	if err := tel.For("outbox relay"); err != nil {
		return nil, err
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	meter := tel.Meter("github.com/example/sagasuite/platform/outbox")
	r := &Relay{pool: pool, wake: postgres.NewSignal(), pub: pub, cfg: cfg, log: tel.Logger, tracer: tel.Tracer("github.com/example/sagasuite/platform/outbox")}
	var err error
	if r.published, err = meter.Int64Counter("outbox.published",
		metric.WithDescription("Outbox rows published to Kafka."), metric.WithUnit("{message}")); err != nil {
		return nil, err
	}
	if r.lag, err = meter.Float64Histogram("outbox.lag",
		metric.WithDescription("Time from an outbox row's commit to Kafka's acknowledgement."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, err
	}
	pending, err := meter.Int64ObservableGauge("outbox.pending.messages",
		metric.WithDescription("Outbox rows committed and not yet published."), metric.WithUnit("{message}"))
	if err != nil {
		return nil, err
	}
	oldest, err := meter.Float64ObservableGauge("outbox.oldest_pending.age",
		metric.WithDescription("Age of the oldest outbox row not yet published; 0 when none is."), metric.WithUnit("s"))
	if err != nil {
		return nil, err
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		n, age, err := Backlog(ctx, pool)
		if err != nil {
			return err
		}
		o.ObserveInt64(pending, n)
		o.ObserveFloat64(oldest, age.Seconds())
		return nil
	}, pending, oldest)
	return r, err
}

// Backlog is how many rows wait in the outbox and how long the oldest has
// waited (one index-ordered read; the metrics callback calls it on scrape).
func Backlog(ctx context.Context, pool *pgxpool.Pool) (int64, time.Duration, error) {
	var n int64
	var age float64
	if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox`).Scan(&n, &age); err != nil {
		return 0, 0, fmt.Errorf("outbox backlog: %w", err)
	}
	return n, time.Duration(age * float64(time.Second)), nil
}

// Waiting counts the rows that wait in the outbox: those of eventType,
// and all of them. The outbox is small while the broker takes what is
// written, and only while it does not (the case this is asked for) does
// it grow: a read of the whole table is the right plan for it.
func Waiting(ctx context.Context, pool *pgxpool.Pool, eventType string) (ofType, all int64, err error) {
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE event_type = $1), count(*) FROM outbox`, eventType).Scan(&ofType, &all); err != nil {
		return 0, 0, fmt.Errorf("outbox waiting: %w", err)
	}
	return ofType, all, nil
}

// Wake tells the relay that a transaction which wrote the outbox with the
// package's Write has committed: it reads the table for every row, young
// or not. Writers call it after their commit (not inside: the relay would
// look before the rows are visible); it never blocks. Rows written with
// [Relay.Write] need none.
func (r *Relay) Wake() {
	r.readAll.Store(true)
	r.wake.Raise()
}

// Write stores msgs in tx as the package's [Write] does and, once tx (a
// transaction of postgres.InTx) has committed, hands them to the relay,
// which wakes and publishes them as they are, without reading them back:
// a batch's read is a statement and a round trip, and the most frequent
// one, since writers commit one at a time. Rows the relay was not handed
// (a transaction outside InTx, a commit whose outcome was lost, rows left
// by a crash or by a replica that stopped) are found by reading the
// table (see Run). A batch goes out in id order, like a read's.
// Rows of one key reach Kafka in commit order when each is written after
// the one before it was published, whichever replica wrote it: so it is
// in the saga, where an order's next event is decided only once its last
// one came back through Kafka (two writers racing on one order's rows
// serialise on their locks, and the second then finds nothing left to
// announce).
func (r *Relay) Write(ctx context.Context, tx Execer, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	trace, traceJSON, err := traceOf(ctx)
	if err != nil {
		return err
	}
	rows := make([]row, len(msgs))
	if !postgres.AfterCommit(tx, func() { r.hand(rows) }) {
		return Write(ctx, tx, msgs...)
	}
	now := time.Now()
	for i, m := range msgs {
		x, e := &rows[i], m.Event
		x.topic, x.event, x.created = m.Topic, e, now
		x.event.Trace = trace
		if err := postgres.LaterRowsReturning(ctx, tx, handSQL, func(row pgx.Row) error { return row.Scan(&x.id) },
			m.Topic, e.Key, e.ID, e.Type, e.Source, e.Time, string(e.Data), traceJSON); err != nil {
			return fmt.Errorf("outbox: write %s event: %w", e.Type, err)
		}
	}
	return nil
}

// hand queues committed rows for the relay and wakes it.
func (r *Relay) hand(rows []row) {
	r.handed.add(rows)
	r.wake.Raise()
}

// handoff is the rows committed in this process and not yet published, in
// the order their transactions committed. It holds at most maxHanded: past
// that (Kafka down) it forgets them and asks for a read of the table,
// where they are.
type handoff struct {
	mu       sync.Mutex
	rows     []row
	overflow bool
}

// maxHanded bounds the rows waiting in memory.
const maxHanded = 10_000

func (h *handoff) add(rows []row) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.overflow || len(h.rows)+len(rows) > maxHanded {
		h.rows, h.overflow = nil, true
		return
	}
	h.rows = append(h.rows, rows...)
}

// take empties the handoff: its rows, and whether some were forgotten.
func (h *handoff) take() ([]row, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rows, overflow := h.rows, h.overflow
	h.rows, h.overflow = nil, false
	return rows, overflow
}

// Lifecycle: run beside the server.
func (r *Relay) Lifecycle() lifecycle.Parts { return lifecycle.Parts{Run: r.Run} }

// Run publishes until ctx is done, woken by what Write hands over (or by
// Wake) with a slow poll behind it. It returns nil on shutdown; failures
// are logged and retried.
//
// Every replica's relay publishes the rows its own process committed, as
// they are handed over, with no lock and no read: two replicas writing at
// once each publish their own. It deletes what it published every
// deleteEvery, in one statement. The table itself is read only for rows
// no one handed over (a crash's, a replica's that stopped, a transaction
// outside InTx): by one relay at a time, under the advisory lock, at
// every PollInterval, and only rows orphanAfter old, which their own
// relay would have published long before. On start, after Wake, and when
// rows were forgotten or failed to go, the read takes every row, young
// or not, and a relay locked out looks again soon.
//
// Why not one relay for all, holding the lock: it would have to read the
// table every few milliseconds for the other replicas' rows, which cost
// inventory (two replicas) 1.8 statements and transactions a saga at
// 100 orders/s, and held half of its events back until the next read.
func (r *Relay) Run(ctx context.Context) error {
	var mine published   // published, not deleted yet
	var recent recentIDs // published from reads of the table
	readAll := true      // the first read takes every row: rows a crash left
	var nextRead time.Time
	var backoff time.Duration // between looks while locked out, when readAll
	last := 0                 // rows in the previous batch
	defer r.deleteOnStop(ctx, &mine)
	postgres.Follow(ctx, "outbox relay", r.wake, postgres.FollowConfig{Poll: r.cfg.PollInterval}, r.log,
		func(ctx context.Context) (time.Duration, error) {
			if last > 1 {
				// Rows come faster than batches go: let the next
				// batch gather a millisecond's worth. At low rates (a
				// row per batch) a row goes at once.
				time.Sleep(time.Millisecond)
			}
			handed, forgotten := r.handed.take()
			if r.readAll.Swap(false) || forgotten {
				readAll, nextRead = true, time.Time{}
			}
			n, err := r.publishHanded(ctx, &mine, &recent, handed)
			last = n
			if err != nil {
				readAll, nextRead = true, time.Time{} // the rows are in the table
				return postgres.Idle, err
			}
			now := time.Now()
			if !now.Before(nextRead) {
				n, locked, err := r.sweep(ctx, &mine, &recent, readAll)
				switch {
				case err != nil:
					readAll, nextRead = true, time.Time{}
					return postgres.Idle, err
				case !locked && readAll:
					// Another relay reads: it may have read before the
					// rows asked for were committed, so look again.
					backoff = min(max(2*backoff, lockedOut), maxLockedOut)
					nextRead = now.Add(backoff)
				case !locked:
					nextRead = now.Add(r.cfg.PollInterval)
				case n == r.cfg.BatchSize:
					backoff = 0
					return postgres.Now, nil // a full batch: more may be waiting
				default:
					backoff, readAll = 0, false
					nextRead = now.Add(r.cfg.PollInterval)
				}
			}
			if err := r.deleteDue(ctx, &mine, time.Now()); err != nil {
				return postgres.Idle, err
			}
			return mine.wait(time.Now(), nextRead), nil
		})
	return nil
}

const (
	// orphanAfter is how old a row must be before a read of the table
	// takes it (but for the reads that take every row): its own relay
	// publishes it within milliseconds of its commit and deletes it
	// within deleteEvery, so a row this old was left by a crash, by a
	// replica that stopped, or by a transaction outside InTx. A relay
	// more than this behind (a broker that stalls) has rows published
	// twice, which consumers deduplicate.
	orphanAfter = 2 * time.Second
	// deleteEvery is how long published rows may stay in the table before
	// the relay deletes them (after a crash they are published again):
	// one statement ten times a second, rather than one a commit.
	deleteEvery = 100 * time.Millisecond
	// lockedOut is how soon a relay asked to read every row looks again
	// after finding another relay reading; each further look waits twice
	// as long, up to maxLockedOut.
	lockedOut    = 5 * time.Millisecond
	maxLockedOut = 50 * time.Millisecond
)

// published is the rows a relay published and has not deleted yet.
type published struct {
	ids   []int64
	since time.Time // when the first of ids was published
}

func (p *published) add(now time.Time, rows []row) {
	if len(p.ids) == 0 {
		p.since = now
	}
	for _, x := range rows {
		p.ids = append(p.ids, x.id)
	}
}

// wait is how long the relay may sleep from now (a wake-up cuts it
// short): until its next read of the table or its next delete.
func (p *published) wait(now, nextRead time.Time) time.Duration {
	until := nextRead
	if len(p.ids) > 0 {
		if due := p.since.Add(deleteEvery); due.Before(until) {
			until = due
		}
	}
	return max(until.Sub(now), time.Millisecond)
}

// recentIDs remembers the ids of rows published from reads of the table
// for a second or two: a row read from the table in the moment between
// its commit and its handover is then not published twice.
type recentIDs struct {
	cur, prev map[int64]bool
	since     time.Time
}

func (r *recentIDs) add(now time.Time, rows []row) {
	if len(rows) == 0 {
		return
	}
	if r.cur == nil || now.Sub(r.since) > time.Second {
		r.prev, r.cur, r.since = r.cur, make(map[int64]bool, len(rows)), now
	}
	for _, x := range rows {
		r.cur[x.id] = true
	}
}

func (r *recentIDs) has(id int64) bool { return r.cur[id] || r.prev[id] }

type row struct {
	id      int64
	topic   string
	event   kafka.Event
	created time.Time
}

// PublishBatch reads up to BatchSize of the oldest rows, publishes them
// and deletes them, returning how many it published. It publishes nothing
// while another relay of the same database reads the table (holds the
// lock). Rows handed over and not yet published are in the table, and
// go with the read.
func (r *Relay) PublishBatch(ctx context.Context) (n int, err error) {
	r.handed.take()
	n, _, err = r.sweep(ctx, &published{}, &recentIDs{}, true)
	return n, err
}

// publishHanded publishes the rows handed over, but those a read of the
// table published already, and remembers them for deleting.
func (r *Relay) publishHanded(ctx context.Context, mine *published, recent *recentIDs, handed []row) (int, error) {
	rows := handed[:0:0]
	for _, x := range handed {
		if !recent.has(x.id) {
			rows = append(rows, x)
		}
	}
	if len(rows) == 0 {
		return 0, nil
	}
	if err := r.publishBatch(ctx, rows); err != nil {
		return 0, err
	}
	mine.add(time.Now(), rows)
	return len(rows), nil
}

// sweep reads the table for rows no one handed over, the oldest BatchSize
// of them (only those orphanAfter old, unless all), passing over the rows
// this relay published and has not deleted yet; publishes them in id
// order and deletes them, with this relay's own, before it gives the lock
// back.
//
// No transaction is open while Kafka is called: the relay holds a
// session-level advisory lock on one connection (so relays of one
// database read the table one at a time, and a row is not published by
// two), and reads, publishes and deletes, each statement on its own. A
// crash in between ends the session and its lock; the rows are still
// there and are published again (at least once; consumers deduplicate on
// ce_id).
func (r *Relay) sweep(ctx context.Context, mine *published, recent *recentIDs, all bool) (n int, locked bool, err error) {
	conn, locked, err := r.lock(ctx)
	if err != nil || !locked {
		return 0, false, err
	}
	defer r.unlock(ctx, conn)
	age := orphanAfter
	if all {
		age = 0
	}
	rows, err := r.load(ctx, conn, mine.ids, age)
	if err != nil || len(rows) == 0 {
		return 0, true, err
	}
	recent.add(time.Now(), rows)
	if err := r.publishBatch(ctx, rows); err != nil {
		return 0, true, err
	}
	// Deleted before the lock goes back, with this relay's own: a relay
	// taking the lock would read the rows still there and publish them
	// again.
	mine.add(time.Now(), rows)
	return len(rows), true, deletePublished(ctx, conn, mine)
}

// lock takes the relays' advisory lock on a connection of its own, which
// it returns when it got it.
func (r *Relay) lock(ctx context.Context) (*pgxpool.Conn, bool, error) {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("outbox relay: %w", err)
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&locked); err != nil || !locked {
		conn.Release()
		if err != nil {
			return nil, false, fmt.Errorf("outbox relay: take lock: %w", err)
		}
		return nil, false, nil
	}
	return conn, true, nil
}

// unlock gives the lock back, also on shutdown, and the connection to the
// pool (or closes it: the lock must not stay with a pooled connection).
func (r *Relay) unlock(ctx context.Context, conn *pgxpool.Conn) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, lockKey); err != nil {
		_ = conn.Conn().Close(uctx) // the lock must not stay with a pooled connection
	}
	conn.Release()
}

// deleteDue deletes the rows published from the handoff when there are a
// batch of them or the first has waited deleteEvery.
func (r *Relay) deleteDue(ctx context.Context, mine *published, now time.Time) error {
	if len(mine.ids) == 0 || (len(mine.ids) < r.cfg.BatchSize && now.Before(mine.since.Add(deleteEvery))) {
		return nil
	}
	return deletePublished(ctx, r.pool, mine)
}

// deleteOnStop deletes what was published, on shutdown too.
func (r *Relay) deleteOnStop(ctx context.Context, mine *published) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := deletePublished(dctx, r.pool, mine); err != nil {
		r.log.Warn("outbox relay: published rows not deleted; they will be published again", "rows", len(mine.ids), "error", err)
	}
}

// deletePublished deletes mine's rows through db (the pool, or the
// connection holding the lock).
func deletePublished(ctx context.Context, db Execer, mine *published) error {
	if len(mine.ids) == 0 {
		return nil
	}
	if _, err := db.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, mine.ids); err != nil {
		return fmt.Errorf("outbox relay: delete published rows: %w", err)
	}
	mine.ids = nil
	return nil
}

// publishBatch publishes rows, sorted by id, in one span linked to each
// message's own trace (the producer spans themselves join those traces),
// and counts them.
func (r *Relay) publishBatch(ctx context.Context, rows []row) error {
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.id, b.id) })
	links := make([]trace.Link, 0, len(rows))
	for _, x := range rows {
		if sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(x.event.Trace))); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	sctx, span := r.tracer.Start(ctx, "outbox relay", trace.WithNewRoot(), trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("outbox.batch.size", len(rows))))
	defer span.End()
	if err := r.publish(sctx, rows); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return fmt.Errorf("outbox relay: %w", err)
	}
	now := time.Now()
	for _, x := range rows {
		attrs := metric.WithAttributes(attribute.String("topic", x.topic))
		r.published.Add(ctx, 1, attrs)
		r.lag.Record(ctx, now.Sub(x.created).Seconds(), attrs)
	}
	return nil
}

// load reads the next batch of rows at least age old, passing over the
// rows skip (published, not deleted yet).
func (r *Relay) load(ctx context.Context, conn *pgxpool.Conn, skip []int64, age time.Duration) ([]row, error) {
	if skip == nil {
		skip = []int64{} // not nil: <> ALL (NULL) passes over every row
	}
	rs, err := conn.Query(ctx, `SELECT id, topic, event_key, event_id, event_type, event_source, event_time, data, trace_context, created_at
		FROM outbox WHERE id <> ALL($2::bigint[]) AND created_at <= now() - $3::interval ORDER BY id LIMIT $1`,
		r.cfg.BatchSize, skip, age)
	if err != nil {
		return nil, fmt.Errorf("outbox relay: read outbox: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var x row
		var data, traceCtx []byte
		if err := rs.Scan(&x.id, &x.topic, &x.event.Key, &x.event.ID, &x.event.Type, &x.event.Source,
			&x.event.Time, &data, &traceCtx, &x.created); err != nil {
			return nil, fmt.Errorf("outbox relay: read outbox row: %w", err)
		}
		x.event.Data = data
		if err := json.Unmarshal(traceCtx, &x.event.Trace); err != nil {
			return nil, fmt.Errorf("outbox relay: outbox row %d trace context: %w", x.id, err)
		}
		out = append(out, x)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox relay: read outbox: %w", err)
	}
	return out, nil
}

// publish sends rows in id order, one Publish per run of the same topic.
func (r *Relay) publish(ctx context.Context, rows []row) error {
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && rows[end].topic == rows[start].topic {
			end++
		}
		events := make([]kafka.Event, 0, end-start)
		for _, x := range rows[start:end] {
			events = append(events, x.event)
		}
		if err := r.pub.Publish(ctx, rows[start].topic, events...); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// Setup creates the outbox table in pool's database (if it is not there
// yet) and returns the relay that publishes it: the component a service
// adds to its process. Stores write with Write in their own transactions.
func Setup(ctx context.Context, pool *pgxpool.Pool, pub Publisher, tel observe.Bundle, cfg RelayConfig) (*Relay, error) {
	r, err := NewRelay(pool, pub, tel, cfg)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, pool, "outbox", Migrations()); err != nil {
		return nil, err
	}
	return r, nil
}
