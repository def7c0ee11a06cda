// Package projection keeps a read model in step with the event store: the
// query side of CQRS. A Projector follows the store in its reading order
// (see eventstore.ReadAll), applies each event through a Handler and
// stores its checkpoint in the same transaction, so a crash replays from
// the last committed batch and never skips or doubles an event.
//
// Statements of a batch are pipelined to PostgreSQL in one round trip,
// which is what makes rebuilding a large read model fast. Replicas share
// the work safely: an advisory lock lets one projector per read model run
// at a time. Queries that must see a client's own write call WaitFor with
// the position the write returned (read-your-writes). Rebuild fills a
// fresh copy of the table from event zero and swaps it in atomically, so
// readers never see a half-built model.
//
// To drop CQRS from a service, update the read model in the command's
// transaction instead (or query the event store) and delete the projector.
package projection

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/postgres"

	"github.com/example/sagasuite/platform/observe"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the checkpoint table's schema, for postgres.Migrate.
func Migrations() fs.FS { return postgres.Dir(migrations, "migrations") }

// Handler writes events into a read model.
type Handler interface {
	// Apply queues the statements that apply e to table on b. Events of
	// one stream arrive in version order, and the checkpoint commits with
	// the batch, so each event is applied once; still guard on the stream
	// version, so that replaying from an older checkpoint is harmless.
	// table is the live table, or a fresh copy during a rebuild.
	Apply(b *pgx.Batch, table string, e eventstore.Event) error
}

// Config names a projection. Name and Table are required.
type Config struct {
	Name  string // checkpoint and lock name
	Table string // the live read-model table
	// BatchSize caps events per transaction; 0 means 1000.
	BatchSize int
	// PollInterval is the safety-net poll for events no Wake announced
	// (another replica appended them); 0 means 1 s.
	PollInterval time.Duration
}

// gather is how long a follower waits after a wake-up so that one batch
// serves the writes of that moment rather than one write each.
const gather = 500 * time.Microsecond

// lockedOut is how soon a projector looks again after finding another
// replica's projector at work.
const lockedOut = 5 * time.Millisecond

// ErrRebuildRunning means a rebuild is already under way.
var ErrRebuildRunning = errors.New("projection: a rebuild is already running")

// Projector follows the event store into one read model.
type Projector struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	wake *postgres.Signal
	h    Handler
	cfg  Config
	lock int64 // advisory lock key of the live projection

	applied metric.Int64Counter
	parked  metric.Int64Counter
	rebuild chan struct{}
	// oneByOne is how many events the next steps apply one per
	// transaction, after a batch the read model refused for its data:
	// the event at fault is then parked alone.
	oneByOne atomic.Int64
	heldBack atomic.Bool // events exist that a writer in flight holds back

	mu       sync.Mutex
	status   Status
	progress chan struct{} // closed and replaced whenever the checkpoint moves

	active   atomic.Bool // this replica held the projection in its last step
	watchMu  sync.Mutex
	watchers map[string][]*watcher // by stream ID
}

// watcher waits for an event of one stream newer than version, of one
// of types (any type when there are none).
type watcher struct {
	version int64
	types   []string
	ch      chan eventstore.Event // buffered: the one event that woke it
}

// Status is what the projector knows of itself, for the admin endpoint.
type Status struct {
	Name         string                `json:"name"`
	Checkpoint   eventstore.Checkpoint `json:"checkpoint"`
	Head         int64                 `json:"head_position"`
	LagEvents    int64                 `json:"lag_events"`
	LagSeconds   float64               `json:"lag_seconds"`
	Rebuild      RebuildStatus         `json:"rebuild"`
	lastProgress time.Time
}

// RebuildStatus reports the latest rebuild.
type RebuildStatus struct {
	Running    bool       `json:"running"`
	Applied    int64      `json:"applied"`
	Total      int64      `json:"total"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Error      string     `json:"error,omitempty"`
}

// New returns a projector of h into cfg.Table, reporting through tel.
func New(pool *pgxpool.Pool, h Handler, tel observe.Bundle, cfg Config) (*Projector, error) {
	if pool == nil || h == nil || cfg.Name == "" || cfg.Table == "" {
		return nil, errors.New("projection: pool, handler, name and table are required")
	}
	if err := tel.For("projection " + cfg.Name); err != nil {
		return nil, err
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	p := &Projector{pool: pool, log: tel.Logger, wake: postgres.NewSignal(), h: h, cfg: cfg, lock: lockKey("projection:" + cfg.Name), rebuild: make(chan struct{}, 1),
		progress: make(chan struct{}), watchers: map[string][]*watcher{}}
	p.status.Name = cfg.Name
	meter := tel.Meter("github.com/example/sagasuite/platform/projection")
	attrs := metric.WithAttributes(attribute.String("projection", cfg.Name))
	var err error
	if p.applied, err = meter.Int64Counter("projection.events.applied", metric.WithDescription("Events applied to the read model."),
		metric.WithUnit("{event}")); err != nil {
		return nil, err
	}
	if p.parked, err = meter.Int64Counter("projection.events.parked", metric.WithDescription(
		"Events the read model could not apply, recorded in projection_parked and skipped."), metric.WithUnit("{event}")); err != nil {
		return nil, err
	}
	p.parked.Add(context.Background(), 0, attrs) // the series exists from the start, for the alert
	lagEvents, err := meter.Int64ObservableGauge("projection.lag.events",
		metric.WithDescription("Events in the store not yet in the read model."), metric.WithUnit("{event}"))
	if err != nil {
		return nil, err
	}
	lagSeconds, err := meter.Float64ObservableGauge("projection.lag",
		metric.WithDescription("Age of the newest event the read model has applied, while events are pending; 0 when caught up."), metric.WithUnit("s"))
	if err != nil {
		return nil, err
	}
	progress, err := meter.Float64ObservableGauge("projection.rebuild.progress",
		metric.WithDescription("Share of events the running (or last) rebuild has applied, 0 to 1."), metric.WithUnit("1"))
	if err != nil {
		return nil, err
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		if err := p.Refresh(ctx); err != nil {
			return err
		}
		s := p.Status()
		o.ObserveInt64(lagEvents, s.LagEvents, attrs)
		o.ObserveFloat64(lagSeconds, s.LagSeconds, attrs)
		share := 0.0
		if s.Rebuild.Total > 0 {
			share = float64(s.Rebuild.Applied) / float64(s.Rebuild.Total)
		}
		o.ObserveFloat64(progress, share, attrs)
		return nil
	}, lagEvents, lagSeconds, progress)
	return p, err
}

// Status returns a copy of the projector's status.
func (p *Projector) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Wake tells the projector that a transaction which appended events has
// committed. Writers call it after their commit; it never blocks.
func (p *Projector) Wake() { p.wake.Raise() }

// Lifecycle: run beside the server.
func (p *Projector) Lifecycle() lifecycle.Parts { return lifecycle.Parts{Run: p.Run} }

// Run projects until ctx ends, woken by Wake with a slow poll behind it,
// and runs rebuilds that RequestRebuild asked for.
func (p *Projector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.rebuilds(ctx)
	}()
	defer wg.Wait()
	var held time.Duration
	postgres.Follow(ctx, "projector "+p.cfg.Name, p.wake, postgres.FollowConfig{Poll: p.cfg.PollInterval, Gather: gather}, p.log,
		func(ctx context.Context) (time.Duration, error) {
			n, err := p.Step(ctx)
			switch {
			case err != nil:
				return postgres.Idle, err
			case !p.active.Load():
				// Another replica holds the projection, maybe from before
				// our writer's commit: look again until we have looked
				// ourselves.
				return lockedOut, nil
			case n == p.cfg.BatchSize:
				return postgres.Now, nil
			case n == 0 && p.heldBack.Load():
				// Events are committed but held back behind a writing
				// transaction still in flight (anywhere on the server:
				// transaction ids are cluster-wide). Its writer's Wake may
				// have come and gone: look again soon.
				held = min(max(held*2, time.Millisecond), 50*time.Millisecond)
				return held, nil
			}
			held = 0
			return postgres.Idle, nil
		})
	return nil
}

// Step applies the next batch of events and returns how many it applied;
// 0 also when another replica holds the projection.
func (p *Projector) Step(ctx context.Context) (int, error) {
	var (
		cp     eventstore.Checkpoint
		events []eventstore.Event
		parked []parking
	)
	limit := p.cfg.BatchSize
	if p.oneByOne.Load() > 0 {
		limit = 1
	}
	var locked, heldBack bool
	err := postgres.InTx(ctx, p.pool, func(tx pgx.Tx) (err error) {
		if locked, events, heldBack, err = p.next(ctx, tx, limit); err != nil || !locked || len(events) == 0 {
			return err
		}
		cp, parked, err = p.apply(ctx, tx, p.cfg.Table, p.cfg.Name, events)
		return err
	})
	if postgres.IsDataError(err) && len(events) > 0 {
		// The read model refused the batch's data: apply it again one
		// event at a time, and park the one it refuses.
		if len(events) == 1 {
			return p.parkAlone(ctx, events[0], err)
		}
		p.oneByOne.Store(int64(len(events)))
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("project %s: %w", p.cfg.Name, err)
	}
	if limit == 1 && len(events) > 0 {
		p.oneByOne.Add(-1)
	}
	p.committed(ctx, cp, events, parked, locked)
	// Nothing to apply while events are held back by a writer in flight:
	// Run looks again soon.
	p.heldBack.Store(locked && len(events) == 0 && heldBack)
	return len(events), nil
}

// next takes the projection's lock in tx and reads the events after its
// stored checkpoint, up to limit, and whether events after those are held
// back: two statements in one round trip (with tx's BEGIN). The lock comes
// first, so the read, a statement of its own (its own snapshot) that reads
// the checkpoint too, sees every step that committed before it.
func (p *Projector) next(ctx context.Context, tx pgx.Tx, limit int) (locked bool, events []eventstore.Event, heldBack bool, err error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_try_advisory_xact_lock($1)`, p.lock)
	afterCheckpoint.QueueRead(b, p.cfg.Name, limit)
	br := tx.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("read %s's next events: %w", p.cfg.Name, cerr)
		}
	}()
	if err := br.QueryRow().Scan(&locked); err != nil || !locked {
		return false, nil, false, err
	}
	events, heldBack, err = eventstore.ReadHeld(br.Query())
	return true, events, heldBack, err
}

// afterCheckpoint reads the event store after a projection's checkpoint.
var afterCheckpoint = eventstore.AfterStored(checkpointSQL)

// committed updates what the projector knows after a step committed, and
// wakes whoever waits for it.
func (p *Projector) committed(ctx context.Context, cp eventstore.Checkpoint, events []eventstore.Event, parked []parking, locked bool) {
	attrs := metric.WithAttributes(attribute.String("projection", p.cfg.Name))
	p.applied.Add(ctx, int64(len(events)-len(parked)), attrs)
	for _, pk := range parked {
		p.parked.Add(ctx, 1, attrs)
		p.log.ErrorContext(ctx, "projection parked an event it cannot apply", "projection", p.cfg.Name,
			"stream_id", pk.event.StreamID, "version", pk.event.Version, "position", pk.event.Position, "type", pk.event.Type, "error", pk.err)
	}
	p.mu.Lock()
	if len(events) > 0 {
		p.status.Checkpoint = cp
		p.status.lastProgress = events[len(events)-1].OccurredAt
		close(p.progress) // wake the WaitFor callers
		p.progress = make(chan struct{})
	}
	p.mu.Unlock()
	p.active.Store(locked)
	p.notify(events)
}

// parkAlone parks e, which the read model refused on its own, and moves
// the checkpoint past it.
func (p *Projector) parkAlone(ctx context.Context, e eventstore.Event, cause error) (int, error) {
	var locked bool
	cp := eventstore.Checkpoint{TxID: e.TxID, Position: e.Position}
	err := postgres.InTx(ctx, p.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, p.lock).Scan(&locked); err != nil || !locked {
			return err
		}
		now, err := readCheckpoint(ctx, tx, p.cfg.Name)
		if err != nil || now.Passed(e) {
			locked = false // another replica got past it meanwhile
			return err
		}
		b := &pgx.Batch{}
		queuePark(b, p.cfg.Name, e, cause)
		queueCheckpoint(b, p.cfg.Name, cp)
		return laterAll(ctx, tx, b)
	})
	if err != nil || !locked {
		return 0, err
	}
	p.oneByOne.Add(-1)
	p.committed(ctx, cp, []eventstore.Event{e}, []parking{{event: e, err: cause}}, true)
	return 1, nil
}

// Refresh reads the projection's lag from the database into Status. The
// metrics callback and the admin endpoint call it, so the hot path does
// not pay for it.
func (p *Projector) Refresh(ctx context.Context) error {
	cp, err := readCheckpoint(ctx, p.pool, p.cfg.Name)
	if err != nil {
		return err
	}
	head, err := eventstore.Head(ctx, p.pool)
	if err != nil {
		return err
	}
	pending, err := eventstore.Pending(ctx, p.pool, cp, 100_000)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status.Checkpoint, p.status.Head, p.status.LagEvents, p.status.LagSeconds = cp, head, pending, 0
	if pending > 0 && !p.status.lastProgress.IsZero() {
		p.status.LagSeconds = time.Since(p.status.lastProgress).Seconds()
	}
	return nil
}

// parking is an event the projection could not apply, and why.
type parking struct {
	event eventstore.Event
	err   error
}

// apply queues events and the new checkpoint in tx, to go with its
// COMMIT (postgres.Later), and returns the checkpoint. An event the
// handler cannot apply (it does not decode, or no code knows its type)
// is parked instead: recorded in projection_parked with why, skipped,
// and returned, so that one bad event does not freeze the read model
// and what reads it (the saga watchdog finds stalled orders there).
func (p *Projector) apply(ctx context.Context, tx pgx.Tx, table, checkpoint string, events []eventstore.Event) (eventstore.Checkpoint, []parking, error) {
	b := &pgx.Batch{}
	var parked []parking
	for _, e := range events {
		one := &pgx.Batch{} // nothing of an event that fails half-way is kept
		if err := p.h.Apply(one, table, e); err != nil {
			err = fmt.Errorf("apply %s %s/%d: %w", e.Type, e.StreamID, e.Version, err)
			queuePark(b, checkpoint, e, err)
			parked = append(parked, parking{event: e, err: err})
			continue
		}
		b.QueuedQueries = append(b.QueuedQueries, one.QueuedQueries...)
	}
	last := events[len(events)-1]
	cp := eventstore.Checkpoint{TxID: last.TxID, Position: last.Position}
	queueCheckpoint(b, checkpoint, cp)
	return cp, parked, laterAll(ctx, tx, b)
}

func queuePark(b *pgx.Batch, name string, e eventstore.Event, cause error) {
	b.Queue(`INSERT INTO projection_parked (name, position, stream_id, version, type, error) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT DO NOTHING`, name, e.Position, e.StreamID, e.Version, e.Type, cause.Error())
}

func queueCheckpoint(b *pgx.Batch, name string, cp eventstore.Checkpoint) {
	b.Queue(`INSERT INTO projection_checkpoints (name, transaction_id, position) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, position = EXCLUDED.position, updated_at = now()`,
		name, int64(cp.TxID), cp.Position) // #nosec G115 -- a PostgreSQL xid8 is below 2^63
}

// laterAll queues b's statements in tx, to go with its next statement or
// COMMIT.
func laterAll(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	for _, q := range b.QueuedQueries {
		if err := postgres.Later(ctx, tx, q.SQL, q.Arguments...); err != nil {
			return err
		}
	}
	return nil
}

func readCheckpoint(ctx context.Context, q eventstore.Querier, name string) (eventstore.Checkpoint, error) {
	return scanCheckpoint(q.QueryRow(ctx, checkpointSQL, name), name)
}

const checkpointSQL = `SELECT transaction_id, position FROM projection_checkpoints WHERE name = $1`

// scanCheckpoint reads the checkpoint name off row (of checkpointSQL): the
// start of the store when there is none yet.
func scanCheckpoint(row pgx.Row, name string) (eventstore.Checkpoint, error) {
	var cp eventstore.Checkpoint
	var tx int64
	err := row.Scan(&tx, &cp.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return cp, nil
	}
	if err != nil {
		return cp, fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	cp.TxID = uint64(tx) // #nosec G115 -- read from an xid8 column: never negative
	return cp, nil
}

// WaitFor returns once the read model holds the event at position (and so
// everything before it in the reading order), or ctx's error. A command
// returns the position of its last event; a query that must show the
// client its own write waits for it here. When this replica runs the
// projector, waiting costs no queries: it is woken by the projector's
// progress; otherwise it reads the shared checkpoint every 20 ms. It
// wakes the projector first: the write may come from another replica,
// whose Wake does not reach this one.
func (p *Projector) WaitFor(ctx context.Context, position int64) error {
	p.Wake()
	var target eventstore.Checkpoint
	for wait := time.Millisecond; ; wait = min(wait*2, 20*time.Millisecond) {
		if target.Position == 0 {
			at, found, err := eventstore.At(ctx, p.pool, position)
			if err != nil {
				return err
			}
			if found {
				target = at
			}
		}
		p.mu.Lock()
		local, progress := p.status.Checkpoint, p.progress
		p.mu.Unlock()
		ev := eventstore.Event{TxID: target.TxID, Position: target.Position}
		if target.Position != 0 {
			if local.Passed(ev) {
				return nil
			}
			if wait >= 20*time.Millisecond { // not moving here: maybe another replica projects
				cp, err := readCheckpoint(ctx, p.pool, p.cfg.Name)
				if err != nil {
					return err
				}
				if cp.Passed(ev) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-progress:
			wait = time.Millisecond
		case <-time.After(wait):
		}
	}
}

// Watch returns a channel that receives the first event of streamID with
// a version above version once this projector has applied it (the event
// may spare the waiter a read of what it changed), and a func that
// stops watching (call it when done waiting). It is how a query waits for
// one entity to change without polling: thousands of waiters cost a map
// entry each, and only the events of their own stream wake them. Only
// the replica that runs the projection sees its events (see Active);
// elsewhere nothing arrives, and the waiter must read again. With types,
// only an event of one of them wakes it: a waiter for an outcome is not
// woken by the steps before it.
func (p *Projector) Watch(streamID string, version int64, types ...string) (<-chan eventstore.Event, func()) {
	w := &watcher{version: version, types: types, ch: make(chan eventstore.Event, 1)}
	p.watchMu.Lock()
	p.watchers[streamID] = append(p.watchers[streamID], w)
	p.watchMu.Unlock()
	return w.ch, func() {
		p.watchMu.Lock()
		defer p.watchMu.Unlock()
		ws := p.watchers[streamID]
		for i, x := range ws {
			if x == w {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(p.watchers, streamID)
		} else {
			p.watchers[streamID] = ws
		}
	}
}

// Active reports whether this replica ran the projection in its latest
// step, so that Watch will see the events as they are applied.
func (p *Projector) Active() bool { return p.active.Load() }

// notify wakes the watchers of the streams in a committed batch.
func (p *Projector) notify(events []eventstore.Event) {
	p.watchMu.Lock()
	defer p.watchMu.Unlock()
	if len(p.watchers) == 0 {
		return
	}
	for _, e := range events {
		ws, ok := p.watchers[e.StreamID]
		if !ok {
			continue
		}
		kept := ws[:0]
		for _, w := range ws {
			if e.Version > w.version && (len(w.types) == 0 || slices.Contains(w.types, e.Type)) {
				w.ch <- e // once: it is forgotten now
			} else {
				kept = append(kept, w)
			}
		}
		if len(kept) == 0 {
			delete(p.watchers, e.StreamID)
		} else {
			p.watchers[e.StreamID] = kept
		}
	}
}

func lockKey(s string) int64 {
	// FNV-1a: a stable advisory-lock key per name.
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return int64(h) // #nosec G115 -- the FNV hash's bits as an advisory lock key; wrapping is intended
}
