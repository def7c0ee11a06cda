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
	// BatchSize caps rows published per transaction; 0 means 500.
	BatchSize int
	// PollInterval is the safety-net poll for rows no Wake announced (another
	// replica wrote them); 0 means 1 s.
	PollInterval time.Duration
	// HoldIdle is how long a relay keeps the lock without finding rows
	// (see Run); 0 means 100 ms.
	HoldIdle time.Duration
}

// Relay publishes the outbox. Several relays (replicas) may share one
// database: an advisory lock lets one publish at a time, which also keeps
// the order.
type Relay struct {
	pool      *pgxpool.Pool
	wake      *postgres.Signal
	handed    handoff // rows this process's Write committed, not yet published
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
	if cfg.HoldIdle <= 0 {
		cfg.HoldIdle = 100 * time.Millisecond
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
// package's Write has committed. Writers call it after their commit (not
// inside: the relay would look before the rows are visible); it never
// blocks. Rows written with [Relay.Write] need none.
func (r *Relay) Wake() { r.wake.Raise() }

// Write stores msgs in tx as the package's [Write] does and, once tx (a
// transaction of postgres.InTx) has committed, hands them to the relay,
// which wakes and publishes them as they are, without reading them back:
// a batch's read is a statement and a round trip, and the most frequent
// one, since writers commit one at a time. Rows the relay was not handed
// (another replica's, a transaction outside InTx, a commit whose outcome
// was lost, rows left by a crash) it finds by reading the table, on taking
// its lock and at its polls. A batch goes out in id order, like a read's.
// Rows of one key reach the relay in commit order when each is written
// after the one before it was handed over: so it is in the saga, where an
// order's next event is decided only once its last one came back through
// Kafka (two writers racing on one order's rows serialise on their locks,
// and the second then finds nothing left to announce).
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
// that (Kafka down, the lock held elsewhere) it forgets them and asks for
// a read of the table, where they are.
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
// While there is traffic the relay keeps the lock (and its connection).
// It publishes the rows handed over as they come, and deletes what it
// published every deleteEvery, in one statement. It reads the table on
// taking the lock, and then every busyPoll for rows no one handed over
// (another replica's) while another replica's rows turned up in the last
// otherReplicas; otherwise it doubles the interval up to maxBusyPoll: a
// replica alone reads the table ten times a second, not once per commit.
// It lets the lock go after HoldIdle without rows. Rows that another
// replica wrote are seen by whichever relay holds the lock:
// a relay locked out looks again, backing off from lockedOut to
// maxLockedOut, until the holder let go or has had time to see them
// (2 × HoldIdle).
func (r *Relay) Run(ctx context.Context) error {
	var s *session // the lock, while held
	var lastWork, lockedOutSince, nextTry time.Time
	var lastForeign time.Time // when a read last found another replica's rows
	suspects := suspects{}    // rows reads found that were not handed over (yet)
	var backoff time.Duration // between looks while locked out
	last := 0                 // rows in the previous batch
	defer func() {
		if s != nil {
			r.unlock(ctx, s)
		}
	}()
	// No gathering after a wake-up unless rows come in groups (below).
	postgres.Follow(ctx, "outbox relay", r.wake, postgres.FollowConfig{Poll: r.cfg.PollInterval}, r.log,
		func(ctx context.Context) (time.Duration, error) {
			now := time.Now()
			if s == nil {
				if now.Before(nextTry) {
					// Locked out: a wake-up (this replica's commits, many a
					// second) does not make it look sooner; the holder
					// polls and sees those rows.
					r.handed.take()
					return nextTry.Sub(now), nil
				}
				conn, locked, err := r.lock(ctx)
				switch {
				case err != nil:
					return postgres.Idle, err
				case !locked && lockedOutSince.IsZero():
					lockedOutSince, backoff = now, lockedOut
				case !locked && now.Sub(lockedOutSince) < 2*r.cfg.HoldIdle:
					backoff = min(2*backoff, maxLockedOut)
				case !locked:
					lockedOutSince, nextTry = time.Time{}, time.Time{}
					r.handed.take() // the holder has read the table since
					return postgres.Idle, nil
				}
				if !locked {
					r.handed.take() // in the table, for the holder
					nextTry = now.Add(backoff)
					return backoff, nil
				}
				s = &session{conn: conn, nextRead: now, poll: busyPoll}
				lastWork, lockedOutSince, nextTry = now, time.Time{}, time.Time{}
			}
			if last > 1 {
				// Rows come faster than batches go: let the next
				// batch gather a millisecond's worth. At low rates (a
				// row per batch) a row goes at once.
				time.Sleep(time.Millisecond)
			}
			handed, forgotten := r.handed.take()
			if suspects.anotherWrote(now, handed) {
				// Another replica writes: its rows wait for these reads.
				lastForeign, s.poll = now, busyPoll
				if soon := now.Add(busyPoll); soon.Before(s.nextRead) {
					s.nextRead = soon
				}
			}
			read := forgotten || !now.Before(s.nextRead)
			n, foreign, err := r.drain(ctx, s, handed, read)
			suspects.add(now, foreign)
			if err == nil {
				err = r.deleteDue(ctx, s, time.Now())
			}
			last = n
			switch {
			case err != nil:
				r.unlock(ctx, s)
				s = nil
				return postgres.Idle, err
			case read && n == r.cfg.BatchSize:
				lastWork = now
				return postgres.Now, nil // a full batch: more may be waiting
			case n > 0:
				lastWork = now
			case now.Sub(lastWork) >= r.cfg.HoldIdle:
				r.unlock(ctx, s)
				s = nil
				return postgres.Idle, nil
			}
			if read {
				switch {
				case now.Sub(lastForeign) < otherReplicas:
					s.poll = busyPoll // another replica writes: its rows wait for these reads
				case len(foreign) == 0:
					s.poll = min(2*s.poll, maxBusyPoll)
				} // else rows not handed over (yet): the interval stays until they are, or are another replica's
				s.nextRead = now.Add(s.poll)
			}
			return s.wait(time.Now(), suspects.due()), nil
		})
	return nil
}

const (
	// busyPoll is how often a relay holding the lock first reads the
	// table for rows no one handed over (other replicas'); maxBusyPoll is
	// how far that backs off while the reads find none.
	busyPoll    = 5 * time.Millisecond
	maxBusyPoll = 100 * time.Millisecond
	// otherReplicas is how long after a read found another replica's rows
	// the relay keeps reading every busyPoll: that replica writes now and
	// then, and a back-off would hold its rows back (inventory's second
	// replica, at 50 orders/s, writes one every 40 ms).
	otherReplicas = 10 * time.Second
	// deleteEvery is how long published rows may stay in the table before
	// the relay deletes them (after a crash they are published again):
	// as long as maxBusyPoll, so that a relay alone deletes with its reads
	// (one round trip, one transaction), ten times a second rather than
	// once a commit.
	deleteEvery = 100 * time.Millisecond
	// lockedOut is how soon a relay looks again after finding another
	// replica's relay holding the lock; each further look waits twice as
	// long, up to maxLockedOut (a replica that writes all the time found
	// the lock taken 200 times a second with a fixed 5 ms).
	lockedOut    = 5 * time.Millisecond
	maxLockedOut = 50 * time.Millisecond
)

// session is a relay's hold of the lock: its connection, the rows it
// published and has not deleted yet, and when it reads the table next.
type session struct {
	conn     *pgxpool.Conn
	sent     []int64   // published, deleted with the next read or when due
	sentAt   time.Time // when the first of sent was published
	nextRead time.Time
	poll     time.Duration // the interval between reads of the table
	recent   recentIDs     // rows published from reads of the table
}

// wait is how long the relay may sleep from now (a wake-up cuts it
// short): until its next read of the table, its next delete, or check
// (when not zero) of rows not handed over.
func (s *session) wait(now, check time.Time) time.Duration {
	until := s.nextRead
	if !check.IsZero() && check.Before(until) {
		until = check
	}
	if len(s.sent) > 0 {
		if due := s.sentAt.Add(deleteEvery); due.Before(until) {
			until = due
		}
	}
	return max(until.Sub(now), time.Millisecond)
}

// suspects is the rows reads found that were not handed over, and when:
// another replica's, or this process's, read between their commit and
// their handover. With many writers committing at once a read often lands
// in that moment, and a handover can come several steps later (the writer
// waits for a core): a row is taken for another replica's only when it is
// still not handed over after handoverGrace.
type suspects map[int64]time.Time

// handoverGrace is how long a row may take from its commit to its
// handover in this process.
const handoverGrace = 50 * time.Millisecond

func (s suspects) add(now time.Time, ids []int64) {
	for _, id := range ids {
		s[id] = now
	}
}

// due is when the oldest suspect has waited handoverGrace; zero for none.
func (s suspects) due() time.Time {
	var first time.Time
	for _, at := range s {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if first.IsZero() {
		return first
	}
	return first.Add(handoverGrace)
}

// anotherWrote forgets the suspects handed over now, and reports whether
// one has waited past handoverGrace (which it forgets too): another
// replica's row.
func (s suspects) anotherWrote(now time.Time, handed []row) bool {
	if len(s) == 0 {
		return false
	}
	for _, x := range handed {
		delete(s, x.id)
	}
	found := false
	for id, at := range s {
		if now.Sub(at) >= handoverGrace {
			delete(s, id)
			found = true
		}
	}
	return found
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

// PublishBatch publishes up to BatchSize of the oldest rows and deletes
// them, returning how many it published. It publishes nothing while another
// relay of the same database holds the lock.
//
// No transaction is open while Kafka is called: the relay holds a
// session-level advisory lock on one connection (so relays of one
// database publish one at a time, in order), reads the rows, publishes
// them, and deletes them, each statement on its own. A crash in between
// ends the session and its lock; the rows are still there and are
// published again (at least once; consumers deduplicate on ce_id).
func (r *Relay) PublishBatch(ctx context.Context) (n int, err error) {
	conn, locked, err := r.lock(ctx)
	if err != nil || !locked {
		return 0, err
	}
	s := &session{conn: conn}
	defer r.unlock(ctx, s)
	handed, _ := r.handed.take()
	n, _, err = r.drain(ctx, s, handed, true)
	return n, err
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

// unlock deletes the rows published last, gives the lock back, also on
// shutdown, and the connection to the pool (or closes it: the lock must
// not stay with a pooled connection).
func (r *Relay) unlock(ctx context.Context, s *session) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	// The delete commits before the lock is given back, in a round trip
	// of its own: in one batch both would run in one implicit
	// transaction, the unlock at once and the delete only at its commit,
	// and a relay taking the lock in between would read the rows still
	// there and publish them again.
	if err := r.deleteSent(uctx, s); err != nil {
		r.log.Warn("outbox relay: published rows not deleted; they will be published again", "rows", len(s.sent), "error", err)
	}
	if _, err := s.conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, lockKey); err != nil {
		_ = s.conn.Conn().Close(uctx) // the lock must not stay with a pooled connection
	}
	s.conn.Release()
}

// deleteDue deletes the rows published when due (deleteNow).
func (r *Relay) deleteDue(ctx context.Context, s *session, now time.Time) error {
	if !r.deleteNow(s, now) {
		return nil
	}
	return r.deleteSent(ctx, s)
}

// deleteNow reports whether the rows published are to be deleted: there
// are a batch of them, or the first has waited deleteEvery.
func (r *Relay) deleteNow(s *session, now time.Time) bool {
	return len(s.sent) > 0 && (len(s.sent) >= r.cfg.BatchSize || !now.Before(s.sentAt.Add(deleteEvery)))
}

// deleteSent deletes the rows published.
func (r *Relay) deleteSent(ctx context.Context, s *session) error {
	if len(s.sent) == 0 {
		return nil
	}
	if _, err := s.conn.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, s.sent); err != nil {
		return fmt.Errorf("outbox relay: delete published rows: %w", err)
	}
	s.sent = nil
	return nil
}

// drain publishes the rows handed over and, when read, reads the table
// first (deleting the rows published before in the same round trip when
// they are due, and passing over them otherwise), and publishes the oldest
// BatchSize rows it holds together with the rows handed over that the read
// did not return (committed since), in id order. A full read leaves the
// handed rows to the next read, which finds them. foreign is the rows the
// read found that were not handed over. Published rows stay in the table,
// in s.sent, until deleted: after a crash they are published again, as
// rows between publish and delete always were (at least once; consumers
// deduplicate on ce_id).
func (r *Relay) drain(ctx context.Context, s *session, handed []row, read bool) (n int, foreign []int64, err error) {
	rows := handed[:0:0]
	for _, x := range handed {
		if !s.recent.has(x.id) { // published from a read before its handover
			rows = append(rows, x)
		}
	}
	if read {
		del := r.deleteNow(s, time.Now())
		table, err := r.load(ctx, s.conn, s.sent, del)
		if err != nil {
			return 0, nil, err
		}
		if del {
			s.sent = nil
		}
		mine := make(map[int64]bool, len(rows))
		for _, x := range rows {
			mine[x.id] = true
		}
		seen := make(map[int64]bool, len(table))
		for _, x := range table {
			seen[x.id] = true
			if !mine[x.id] {
				foreign = append(foreign, x.id)
			}
		}
		if len(table) == r.cfg.BatchSize {
			rows = nil
		}
		for _, x := range rows {
			if !seen[x.id] {
				table = append(table, x)
			}
		}
		rows = table
		s.recent.add(time.Now(), table)
	}
	if len(rows) == 0 {
		return 0, foreign, nil
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.id, b.id) })
	// One span per batch, linked to each message's own trace (the
	// producer spans themselves join those traces).
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
		return 0, foreign, fmt.Errorf("outbox relay: %w", err)
	}
	now := time.Now()
	if len(s.sent) == 0 {
		s.sentAt = now
	}
	for _, x := range rows {
		s.sent = append(s.sent, x.id)
		attrs := metric.WithAttributes(attribute.String("topic", x.topic))
		r.published.Add(ctx, 1, attrs)
		r.lag.Record(ctx, now.Sub(x.created).Seconds(), attrs)
	}
	return len(rows), foreign, nil
}

// load reads the next batch, passing over the rows sent (published
// before), or deleting them first when del: one round trip, and one
// implicit transaction, for both. A reader that deleted with every read
// ran a statement more for each, every 5 ms while another replica writes.
func (r *Relay) load(ctx context.Context, conn *pgxpool.Conn, sent []int64, del bool) ([]row, error) {
	b := &pgx.Batch{}
	skip := sent
	if del || skip == nil {
		skip = []int64{} // not nil: <> ALL (NULL) passes over every row
	}
	if del {
		b.Queue(`DELETE FROM outbox WHERE id = ANY($1)`, sent)
	}
	b.Queue(`SELECT id, topic, event_key, event_id, event_type, event_source, event_time, data, trace_context, created_at
		FROM outbox WHERE id <> ALL($2::bigint[]) ORDER BY id LIMIT $1`, r.cfg.BatchSize, skip)
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	if del {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("delete published rows: %w", err)
		}
	}
	rs, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var x row
		var data, traceCtx []byte
		if err := rs.Scan(&x.id, &x.topic, &x.event.Key, &x.event.ID, &x.event.Type, &x.event.Source,
			&x.event.Time, &data, &traceCtx, &x.created); err != nil {
			return nil, fmt.Errorf("read outbox row: %w", err)
		}
		x.event.Data = data
		if err := json.Unmarshal(traceCtx, &x.event.Trace); err != nil {
			return nil, fmt.Errorf("outbox row %d trace context: %w", x.id, err)
		}
		out = append(out, x)
	}
	return out, rs.Err()
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
