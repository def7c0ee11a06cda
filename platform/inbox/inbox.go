// Package inbox makes message handlers idempotent: the ID (ce_id) of every
// message a consumer applied is recorded in the same transaction as the
// message's effect, so a redelivered message finds its ID and changes
// nothing. Kafka delivers at least once; with the inbox, each effect
// happens exactly once.
//
// To drop it from a service, make every handler idempotent on its own
// (for example with natural keys and upserts) and call the handler
// directly.
package inbox

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the inbox table's schema, for postgres.Migrate.
func Migrations() fs.FS { return postgres.Dir(migrations, "migrations") }

// Execer is satisfied by pgx.Tx.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Record notes that consumer applied eventID within tx. It reports false
// when the ID was already recorded: the caller must then apply nothing.
// A concurrent transaction recording the same ID blocks until that one
// ends, so two deliveries racing each other still apply once.
func Record(ctx context.Context, tx Execer, consumer, eventID string) (first bool, err error) {
	tag, err := tx.Exec(ctx, `INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, consumer, eventID)
	if err != nil {
		return false, fmt.Errorf("inbox: record %s: %w", eventID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// RecordAll notes that consumer applied the messages of eventIDs within
// tx, in one statement, and reports for each whether it is the first
// time: false for an ID recorded before, and for an ID repeated in
// eventIDs after its first place. The IDs are inserted in sorted order,
// so two transactions recording overlapping sets (a batch redelivered
// while its first delivery still runs) wait for each other instead of
// deadlocking.
func RecordAll(ctx context.Context, tx Querier, consumer string, eventIDs []string) ([]bool, error) {
	sorted := slices.Clone(eventIDs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	rows, err := tx.Query(ctx, `INSERT INTO inbox (consumer, event_id) SELECT $1, id FROM unnest($2::text[]) WITH ORDINALITY AS x(id, n)
		ORDER BY n ON CONFLICT DO NOTHING RETURNING event_id`, consumer, sorted)
	if err != nil {
		return nil, fmt.Errorf("inbox: record %d messages: %w", len(eventIDs), err)
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("inbox: record %d messages: %w", len(eventIDs), err)
	}
	fresh := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		fresh[id] = true
	}
	first := make([]bool, len(eventIDs))
	for i, id := range eventIDs {
		first[i] = fresh[id]
		delete(fresh, id) // a repeat in this batch is a duplicate
	}
	return first, nil
}

// Querier is satisfied by pgx.Tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Prune forgets the IDs recorded before cutoff and returns how many. Keep
// them for longer than any redelivery can take (the broker's retention of
// the consumed topics): an ID forgotten too early lets a very late
// duplicate apply again. It deletes in small batches, so it never holds
// long locks.
func Prune(ctx context.Context, pool *pgxpool.Pool, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := pool.Exec(ctx, `DELETE FROM inbox WHERE ctid IN (SELECT ctid FROM inbox WHERE processed_at < $1 LIMIT 5000)`, cutoff)
		if err != nil {
			return total, fmt.Errorf("inbox: prune: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 5000 {
			return total, nil
		}
	}
}

// LockFunc takes, in tx and in one fixed order, every row lock the
// handlers of msgs will take (BatchLocking): a batch whose handlers lock
// shared rows one message after another would lock them in the messages'
// order, and two batches would deadlock.
type LockFunc func(ctx context.Context, tx pgx.Tx, msgs []kafka.Message) error

// TxHandler applies one message inside tx.
type TxHandler func(ctx context.Context, tx pgx.Tx, m kafka.Message) error

// Routes maps a CloudEvents type to its handler. A type mapped to nil is
// known and deliberately ignored; a type not in the map is unknown and the
// message is dead-lettered: a producer deployed ahead of this consumer
// then loses nothing, and `redrive` replays the parked messages once the
// consumer knows the type (docs/events.md).
type Routes map[string]TxHandler

// Covers reports, as an error, the types of the producers' contracts
// (orderevents.Types, …) that routes does not map and the types it maps
// that no contract lists. Each consumer's test calls it, so a type added
// to a contract makes every consumer decide (handle or ignore) before it
// ships, instead of dead-lettering at run time.
func (r Routes) Covers(contracts ...[]string) error {
	want := map[string]bool{}
	var errs []error
	for _, types := range contracts {
		for _, t := range types {
			want[t] = true
			if _, ok := r[t]; !ok {
				errs = append(errs, fmt.Errorf("type %s has no route (map it to nil to ignore it)", t))
			}
		}
	}
	for t := range r {
		if !want[t] {
			errs = append(errs, fmt.Errorf("route for %s, which no contract lists", t))
		}
	}
	return errors.Join(errs...)
}

// ignores reports whether typ is known and deliberately ignored (mapped
// to nil): nothing to apply, so nothing to record.
func (r Routes) ignores(typ string) bool {
	h, known := r[typ]
	return known && h == nil
}

// On is the route of an event type whose data is a T: it decodes and
// validates the data, so the handler holds only what it does with it. A
// message that does not decode or validate is permanent (the same bytes
// never do better): it is dead-lettered.
//
//	orderevents.Placed: inbox.On(h.reserve), // reserve(ctx, tx, m, e orderevents.OrderPlaced)
func On[T kafka.Validator](h func(ctx context.Context, tx pgx.Tx, m kafka.Message, e T) error) TxHandler {
	return func(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
		e, err := kafka.DecodeValid[T](m)
		if err != nil {
			return err
		}
		return h(ctx, tx, m, e)
	}
}

// Route returns a TxHandler that dispatches on the event type.
func Route(routes Routes) TxHandler {
	return func(ctx context.Context, tx pgx.Tx, m kafka.Message) error {
		h, ok := routes[m.Type]
		if !ok {
			return kafka.Permanent(fmt.Errorf("unknown event type %q on %s", m.Type, m.Topic))
		}
		if h == nil {
			return nil
		}
		return h(ctx, tx, m)
	}
}

type afterCommitKey struct{}

// AfterCommit asks Handler to run f once the handler's transaction has
// committed, in the consumer's goroutine. It is the place for a remote
// call, which must never run inside a transaction (it would hold a pooled
// connection and row locks for as long as the remote side takes). Record
// the decision to call in the transaction first: f runs at most once per
// message, and a crash, a failure or a shutdown between the commit and f
// loses it, so a recovery job must find the recorded decision and make
// the call then. f's error is the handler's (logged; the redelivered
// message is then skipped by the inbox). It reports false outside an
// inbox's handler, where nothing would run f.
func AfterCommit(ctx context.Context, f func(ctx context.Context) error) bool {
	after, ok := ctx.Value(afterCommitKey{}).(*[]func(context.Context) error)
	if ok {
		*after = append(*after, f)
	}
	return ok
}

// handler returns a kafka.Handler that runs h in a transaction and only for
// messages consumer has not applied before, then what h asked to run
// after the commit (AfterCommit). A transaction that PostgreSQL refuses
// for its data (postgres.IsDataError) fails kafka.Hopeless: a message
// whose effect can never apply is dead-lettered after a few tries
// instead of holding its partition for ever. Skipped redeliveries are counted in
// inbox.duplicates on mp.
//
// The message's ID is recorded last, with the COMMIT (postgres.Later),
// not first: a redelivery is rare, and recording first costs every
// message a round trip before its handler can start. A redelivered
// message's handler runs, and its transaction then fails on the inbox's
// key (or its handler fails on what the first delivery changed), is
// rolled back whole, and is found in the inbox: skipped. Two deliveries
// racing each other still apply once: the second's insert waits for the
// first's transaction, and fails once it commits.
func handler(pool *pgxpool.Pool, consumer string, h TxHandler, mp metric.MeterProvider) kafka.Handler {
	dups, byConsumer := duplicates(mp, consumer)
	return kafka.HandlerFunc(func(ctx context.Context, m kafka.Message) error {
		var after []func(context.Context) error
		err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			if err := h(context.WithValue(ctx, afterCommitKey{}, &after), tx, m); err != nil {
				return err
			}
			return postgres.Later(ctx, tx, `INSERT INTO inbox (consumer, event_id) VALUES ($1, $2)`, consumer, m.ID)
		})
		if err != nil && applied(ctx, pool, consumer, m.ID, err) {
			skipped(ctx, m)
			countDuplicates(ctx, dups, byConsumer, 1)
			return nil
		}
		if postgres.IsDataError(err) {
			// The message's data breaks a constraint or a column's range:
			// tried a few times, then dead-lettered (kafka.Retry).
			return kafka.Hopeless(err)
		}
		if err != nil {
			return err
		}
		for _, f := range after {
			if err := f(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// applied reports whether consumer applied eventID before, given err,
// the failure of a transaction that tried to apply it again: its insert
// into the inbox met the key of the first, or the handler failed (on
// what the first delivery changed, or for a reason of its own), and the
// inbox is asked. A failed look is not a duplicate: err stands.
func applied(ctx context.Context, pool *pgxpool.Pool, consumer, eventID string, err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "inbox_pkey" {
		return true
	}
	var found bool
	if qerr := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2)`,
		consumer, eventID).Scan(&found); qerr != nil {
		return false
	}
	return found
}

// skipped notes on m's span that the inbox skipped it.
func skipped(ctx context.Context, m kafka.Message) {
	trace.SpanFromContext(ctx).AddEvent("duplicate message skipped",
		trace.WithAttributes(attribute.String("messaging.message.id", m.ID)))
}

// batch returns a kafka.BatchHandler that applies a batch of messages in
// one transaction, each once (as handler does, with the batch's IDs
// recorded in one statement: RecordAll), then runs what each asked to run
// after the commit, in order. Any failure rolls the whole batch
// back; the consumer then hands the messages to the handler one at a time. An
// AfterCommit call that fails is reported after the others ran; handled
// again alone, its message is a duplicate, as with handler.
func batch(pool *pgxpool.Pool, consumer string, h TxHandler, lock LockFunc, mp metric.MeterProvider) kafka.BatchHandler {
	dups, byConsumer := duplicates(mp, consumer)
	return kafka.BatchFunc(func(ctxs []context.Context, msgs []kafka.Message) error {
		after := make([][]func(context.Context) error, len(msgs))
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
		}
		var first []bool
		err := postgres.InTx(ctxs[0], pool, func(tx pgx.Tx) (err error) {
			first, err = RecordAll(ctxs[0], tx, consumer, ids)
			if err != nil {
				return err
			}
			if err := lockFresh(ctxs[0], tx, lock, msgs, first); err != nil {
				return err
			}
			for i, m := range msgs {
				if err := applyOnce(ctxs[i], tx, first[i], h, m, &after[i]); err != nil {
					return fmt.Errorf("message %s in a batch of %d: %w", m.ID, len(msgs), err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		repeats := 0
		for _, f := range first {
			if !f {
				repeats++
			}
		}
		countDuplicates(ctxs[0], dups, byConsumer, repeats)
		var errs []error
		for i, fs := range after {
			for _, f := range fs {
				if err := f(ctxs[i]); err != nil {
					errs = append(errs, err)
				}
			}
		}
		return errors.Join(errs...)
	})
}

// lockFresh runs lock, if any, on the messages of msgs applied for the
// first time (first), if there are some.
func lockFresh(ctx context.Context, tx pgx.Tx, lock LockFunc, msgs []kafka.Message, first []bool) error {
	if lock == nil {
		return nil
	}
	var fresh []kafka.Message
	for i, m := range msgs {
		if first[i] {
			fresh = append(fresh, m)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	return lock(ctx, tx, fresh)
}

// duplicates is the inbox.duplicates counter of consumer on mp, nil if
// it cannot be made.
func duplicates(mp metric.MeterProvider, consumer string) (metric.Int64Counter, metric.MeasurementOption) {
	dups, err := mp.Meter("github.com/example/sagasuite/platform/inbox").Int64Counter("inbox.duplicates",
		metric.WithDescription("Redelivered messages the inbox skipped: applied once already."), metric.WithUnit("{message}"))
	if err != nil {
		otel.Handle(err) // a metric that cannot be made must not stop consumption
	}
	byConsumer := metric.WithAttributes(attribute.String("consumer", consumer))
	if dups != nil {
		dups.Add(context.Background(), 0, byConsumer) // the series exists from the start
	}
	return dups, byConsumer
}

// applyOnce runs h for m in tx if first (m's ID was recorded just now);
// otherwise it notes the skipped duplicate on m's span. The caller counts
// duplicates once the transaction commits: a batch that rolls back is
// handled again one message at a time, and its duplicates must not be
// counted twice.
func applyOnce(ctx context.Context, tx pgx.Tx, first bool, h TxHandler, m kafka.Message,
	after *[]func(context.Context) error) error {
	if !first {
		skipped(ctx, m)
		return nil
	}
	return h(context.WithValue(ctx, afterCommitKey{}, after), tx, m)
}

// countDuplicates adds n committed skips to dups, if it could be made.
func countDuplicates(ctx context.Context, dups metric.Int64Counter, byConsumer metric.MeasurementOption, n int) {
	if dups != nil && n > 0 {
		dups.Add(ctx, int64(n), byConsumer)
	}
}
