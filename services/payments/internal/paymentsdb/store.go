// Package paymentsdb is payments' PostgreSQL adapter: it keeps payment intents
// and payments, and the schema they live in.
package paymentsdb

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/services/payments/internal/app"
	"github.com/example/sagasuite/services/payments/internal/payment"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is payments' own schema.
func Migrations() fs.FS { return postgres.Dir(migrations, "migrations") }

// Store reads through the pool; changes take the caller's transaction.
type Store struct {
	pool  *pgxpool.Pool
	write outbox.WriteFunc // how events reach the outbox (Outbox)
}

// Setup creates or updates payments' tables in pool's database and returns
// the store on it.
func Setup(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if err := postgres.Migrate(ctx, pool, "payments", Migrations()); err != nil {
		return nil, err
	}
	return New(pool), nil
}

// New returns a store on pool, whose tables exist (tests, Setup).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool, write: outbox.Write} }

// UpdateIntent records c and returns the intent, locked until tx ends so
// events of one order arriving on different topics are applied one by one.
func (s *Store) UpdateIntent(ctx context.Context, tx pgx.Tx, orderID string, c payment.IntentChange) (payment.Intent, error) {
	rows, _ := tx.Query(ctx, `INSERT INTO payment_intents AS i (order_id, payment_token, card_last4, amount_cents, placed, reserved, cancelled)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (order_id) DO UPDATE SET
			payment_token = CASE WHEN EXCLUDED.placed AND NOT i.placed THEN EXCLUDED.payment_token ELSE i.payment_token END,
			card_last4    = CASE WHEN EXCLUDED.placed THEN EXCLUDED.card_last4 ELSE i.card_last4 END,
			amount_cents  = CASE WHEN EXCLUDED.placed THEN EXCLUDED.amount_cents ELSE i.amount_cents END,
			placed        = i.placed OR EXCLUDED.placed,
			reserved      = i.reserved OR EXCLUDED.reserved,
			cancelled     = i.cancelled OR EXCLUDED.cancelled,
			updated_at    = now()
		RETURNING order_id, payment_token, card_last4, amount_cents, placed, reserved, cancelled`,
		orderID, c.PaymentToken, c.CardLast4, c.AmountCents, c.Placed, c.Reserved, c.Cancelled)
	in, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[payment.Intent])
	if err != nil {
		return in, fmt.Errorf("update payment intent %s: %w", orderID, err)
	}
	return in, nil
}

// ForgetToken drops the card token once the charge is decided: it is not
// needed any more, so it is not kept. Like the other writes whose result
// nothing reads (Insert, SetStatus, CallDone), it goes with tx's next
// statement or its commit (postgres.Later).
func (s *Store) ForgetToken(ctx context.Context, tx pgx.Tx, orderID string) error {
	if err := postgres.Later(ctx, tx, `UPDATE payment_intents SET payment_token = '', updated_at = now() WHERE order_id = $1`, orderID); err != nil {
		return fmt.Errorf("forget token of %s: %w", orderID, err)
	}
	return nil
}

const paymentColumns = `payment_id, order_id, amount_cents, status, card_last4, reason, charge_id`

// Payment returns orderID's payment; found is false when there is none.
// Within a transaction (tx not nil) it locks the row until tx ends.
func (s *Store) Payment(ctx context.Context, tx pgx.Tx, orderID string) (p payment.Payment, found bool, err error) {
	var rows pgx.Rows
	if tx != nil {
		rows, _ = tx.Query(ctx, `SELECT `+paymentColumns+` FROM payments WHERE order_id = $1 FOR UPDATE`, orderID)
	} else {
		rows, _ = s.pool.Query(ctx, `SELECT `+paymentColumns+` FROM payments WHERE order_id = $1`, orderID)
	}
	p, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[payment.Payment])
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("get payment of %s: %w", orderID, err)
	}
	return p, true, nil
}

// Insert records a decided payment.
func (s *Store) Insert(ctx context.Context, tx pgx.Tx, p payment.Payment) error {
	if err := postgres.Later(ctx, tx, `INSERT INTO payments (`+paymentColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		p.PaymentID, p.OrderID, p.AmountCents, p.Status, p.CardLast4, p.Reason, p.ChargeID); err != nil {
		return fmt.Errorf("record payment of %s: %w", p.OrderID, err)
	}
	return nil
}

// SetStatus moves a payment to status with reason.
func (s *Store) SetStatus(ctx context.Context, tx pgx.Tx, paymentID, status, reason string) error {
	if err := postgres.Later(ctx, tx, `UPDATE payments SET status = $2, reason = $3, updated_at = now() WHERE payment_id = $1`,
		paymentID, status, reason); err != nil {
		return fmt.Errorf("set payment %s %s: %w", paymentID, status, err)
	}
	return nil
}

// List returns orderID's payments (zero or one).
func (s *Store) List(ctx context.Context, orderID string) ([]payment.Payment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+paymentColumns+` FROM payments WHERE order_id = $1 ORDER BY created_at`, orderID)
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	ps, err := pgx.CollectRows(rows, pgx.RowToStructByPos[payment.Payment])
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	return ps, nil
}

// PlanCall records, inside tx, the decision to make a provider call; the
// call is due after lease unless its outcome is recorded first. It
// reports false when the same call was already planned.
func (s *Store) PlanCall(ctx context.Context, tx pgx.Tx, orderID, kind string, lease time.Duration) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO psp_calls (order_id, kind, due_at) VALUES ($1, $2, now() + $3::interval)
		ON CONFLICT DO NOTHING`, orderID, kind, lease.String())
	if err != nil {
		return false, fmt.Errorf("plan %s of %s: %w", kind, orderID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// PlanCharge plans orderID's charge (as PlanCall) unless a payment is
// recorded for it, in one statement. The caller holds the order's intent
// locked, so no payment can be recorded between the check and the plan.
func (s *Store) PlanCharge(ctx context.Context, tx pgx.Tx, orderID string, lease time.Duration) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO psp_calls (order_id, kind, due_at) SELECT $1, $2, now() + $3::interval
		WHERE NOT EXISTS (SELECT 1 FROM payments WHERE order_id = $1) ON CONFLICT DO NOTHING`, orderID, payment.CallCharge, lease.String())
	if err != nil {
		return false, fmt.Errorf("plan the charge of %s: %w", orderID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// PlannedCall reads orderID's call of kind, locked until tx ends; found
// is false when there is none (settled already).
func (s *Store) PlannedCall(ctx context.Context, tx pgx.Tx, orderID, kind string) (c payment.Call, found bool, err error) {
	rows, _ := tx.Query(ctx, callSQL+` FOR UPDATE`, orderID, kind)
	c, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[payment.Call])
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read %s of %s: %w", kind, orderID, err)
	}
	return c, true, nil
}

// Settling locks, in this order, orderID's intent, its call of kind and its
// payment, and returns them (app.Settling): three reads in one round trip.
func (s *Store) Settling(ctx context.Context, tx pgx.Tx, orderID, kind string) (st app.Settling, err error) {
	b := &pgx.Batch{}
	b.Queue(intentSQL+` FOR UPDATE`, orderID)
	b.Queue(callSQL+` FOR UPDATE`, orderID, kind)
	b.Queue(`SELECT `+paymentColumns+` FROM payments WHERE order_id = $1 FOR UPDATE`, orderID)
	br := tx.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("settling %s of %s: %w", kind, orderID, cerr)
		}
	}()
	rows, _ := br.Query()
	if st.Intent, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[payment.Intent]); err != nil {
		return st, fmt.Errorf("read payment intent %s: %w", orderID, err)
	}
	rows, _ = br.Query()
	if st.Call, st.CallFound, err = optional(pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[payment.Call])); err != nil {
		return st, fmt.Errorf("read %s of %s: %w", kind, orderID, err)
	}
	rows, _ = br.Query()
	if st.Payment, st.PaymentFound, err = optional(pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[payment.Payment])); err != nil {
		return st, fmt.Errorf("get payment of %s: %w", orderID, err)
	}
	return st, nil
}

// optional turns pgx.ErrNoRows into found false.
func optional[T any](v T, err error) (T, bool, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return v, false, nil
	}
	return v, err == nil, err
}

const (
	intentSQL = `SELECT order_id, payment_token, card_last4, amount_cents, placed, reserved, cancelled FROM payment_intents WHERE order_id = $1`
	callSQL   = `SELECT order_id, kind, attempts, created_at FROM psp_calls WHERE order_id = $1 AND kind = $2`
)

// CallDone forgets a call whose outcome tx records.
func (s *Store) CallDone(ctx context.Context, tx pgx.Tx, orderID, kind string) error {
	if err := postgres.Later(ctx, tx, `DELETE FROM psp_calls WHERE order_id = $1 AND kind = $2`, orderID, kind); err != nil {
		return fmt.Errorf("%s of %s done: %w", kind, orderID, err)
	}
	return nil
}

// PostponeCall makes a call whose outcome is still unknown due again
// after a delay that doubles with each attempt, from 1 s up to 30 s, and
// no later than notAfter (when not zero).
func (s *Store) PostponeCall(ctx context.Context, orderID, kind string, notAfter time.Time) error {
	var bound *time.Time
	if !notAfter.IsZero() {
		bound = &notAfter
	}
	if _, err := s.pool.Exec(ctx, `UPDATE psp_calls
		SET due_at = least(now() + least(interval '30 seconds', interval '1 second' * power(2, least(attempts, 5))), $3)
		WHERE order_id = $1 AND kind = $2`, orderID, kind, bound); err != nil {
		return fmt.Errorf("postpone %s of %s: %w", kind, orderID, err)
	}
	return nil
}

// ClaimDue returns up to limit calls that are due, and makes each due
// again only after lease, so that replicas claim each call once per lease.
func (s *Store) ClaimDue(ctx context.Context, limit int, lease time.Duration) ([]payment.Call, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE psp_calls c SET due_at = now() + $2::interval, attempts = c.attempts + 1
		FROM (SELECT order_id, kind FROM psp_calls WHERE due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED) d
		WHERE c.order_id = d.order_id AND c.kind = d.kind
		RETURNING c.order_id, c.kind, c.attempts, c.created_at`, limit, lease.String())
	calls, err := pgx.CollectRows(rows, pgx.RowToStructByPos[payment.Call])
	if err != nil {
		return nil, fmt.Errorf("claim due provider calls: %w", err)
	}
	return calls, nil
}

// Outstanding counts the provider calls not yet settled, by kind.
func (s *Store) Outstanding(ctx context.Context) ([]payment.CallsOutstanding, error) {
	rows, _ := s.pool.Query(ctx, `SELECT k.kind, count(c.kind), coalesce(extract(epoch FROM now() - min(c.created_at)), 0)
		FROM (VALUES ('charge'), ('refund')) k(kind) LEFT JOIN psp_calls c ON c.kind = k.kind GROUP BY k.kind ORDER BY k.kind`)
	var out []payment.CallsOutstanding
	var kind string
	var n int64
	var age float64
	_, err := pgx.ForEachRow(rows, []any{&kind, &n, &age}, func() error {
		out = append(out, payment.CallsOutstanding{Kind: kind, Count: n, Oldest: time.Duration(age * float64(time.Second))})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count provider calls: %w", err)
	}
	return out, nil
}

// SetChargeID records the provider's charge on a payment that was
// recorded FAILED while its charge was still unknown: the money taken
// after all, which a refund now gives back.
func (s *Store) SetChargeID(ctx context.Context, tx pgx.Tx, paymentID, chargeID string) error {
	if err := postgres.Later(ctx, tx, `UPDATE payments SET charge_id = $2, updated_at = now() WHERE payment_id = $1`, paymentID, chargeID); err != nil {
		return fmt.Errorf("record charge of payment %s: %w", paymentID, err)
	}
	return nil
}

// PendingCalls counts the provider calls decided and not yet recorded.
func (s *Store) PendingCalls(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM psp_calls`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count provider calls: %w", err)
	}
	return n, nil
}

// Intent reads orderID's intent; within a transaction (tx not nil) it
// locks the row until tx ends.
func (s *Store) Intent(ctx context.Context, tx pgx.Tx, orderID string) (payment.Intent, error) {
	q := intentSQL
	var rows pgx.Rows
	if tx != nil {
		rows, _ = tx.Query(ctx, q+` FOR UPDATE`, orderID)
	} else {
		rows, _ = s.pool.Query(ctx, q, orderID)
	}
	in, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[payment.Intent])
	if err != nil {
		return in, fmt.Errorf("read payment intent %s: %w", orderID, err)
	}
	return in, nil
}

// InTx runs f in a transaction.
func (s *Store) InTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return postgres.InTx(ctx, s.pool, f)
}

// Outbox sets how events reach the outbox: the relay's Write, which hands
// them to the relay of this process once their transaction has committed
// (outbox.Write, the default, leaves them for the relay to find). Call it
// before the store is used.
func (s *Store) Outbox(write outbox.WriteFunc) { s.write = write }

// App is the store as payments' use cases see it (app.Store).
func (s *Store) App() app.Store { return appStore{s} }

// In is the store inside tx (app.Tx): every change joins tx, events go to
// the outbox in it, and what runs after the commit waits for the inbox's
// commit.
func (s *Store) In(tx pgx.Tx) app.Tx { return txStore{s: s, tx: tx} }

// events is payments' side of its contract, through the outbox.
var events = outbox.Producer{Topic: paymentevents.Topic, Source: paymentevents.Source}

type appStore struct{ *Store }

func (a appStore) InTx(ctx context.Context, f func(app.Tx) error) error {
	return a.Store.InTx(ctx, func(tx pgx.Tx) error { return f(txStore{s: a.Store, tx: tx}) })
}

func (a appStore) Intent(ctx context.Context, orderID string) (payment.Intent, error) {
	return a.Store.Intent(ctx, nil, orderID)
}

func (a appStore) Payment(ctx context.Context, orderID string) (payment.Payment, bool, error) {
	return a.Store.Payment(ctx, nil, orderID)
}

type txStore struct {
	s  *Store
	tx pgx.Tx
}

func (t txStore) UpdateIntent(ctx context.Context, orderID string, c payment.IntentChange) (payment.Intent, error) {
	return t.s.UpdateIntent(ctx, t.tx, orderID, c)
}

func (t txStore) Settling(ctx context.Context, orderID, kind string) (app.Settling, error) {
	return t.s.Settling(ctx, t.tx, orderID, kind)
}

func (t txStore) Intent(ctx context.Context, orderID string) (payment.Intent, error) {
	return t.s.Intent(ctx, t.tx, orderID)
}

func (t txStore) Payment(ctx context.Context, orderID string) (payment.Payment, bool, error) {
	return t.s.Payment(ctx, t.tx, orderID)
}

func (t txStore) Insert(ctx context.Context, p payment.Payment) error {
	return t.s.Insert(ctx, t.tx, p)
}

func (t txStore) SetStatus(ctx context.Context, paymentID, status, reason string) error {
	return t.s.SetStatus(ctx, t.tx, paymentID, status, reason)
}

func (t txStore) SetChargeID(ctx context.Context, paymentID, chargeID string) error {
	return t.s.SetChargeID(ctx, t.tx, paymentID, chargeID)
}

func (t txStore) ForgetToken(ctx context.Context, orderID string) error {
	return t.s.ForgetToken(ctx, t.tx, orderID)
}

func (t txStore) PlanCall(ctx context.Context, orderID, kind string, lease time.Duration) (bool, error) {
	return t.s.PlanCall(ctx, t.tx, orderID, kind, lease)
}

func (t txStore) PlanCharge(ctx context.Context, orderID string, lease time.Duration) (bool, error) {
	return t.s.PlanCharge(ctx, t.tx, orderID, lease)
}

func (t txStore) PlannedCall(ctx context.Context, orderID, kind string) (payment.Call, bool, error) {
	return t.s.PlannedCall(ctx, t.tx, orderID, kind)
}

func (t txStore) CallDone(ctx context.Context, orderID, kind string) error {
	return t.s.CallDone(ctx, t.tx, orderID, kind)
}

func (t txStore) Emit(ctx context.Context, typ, orderID string, data any) error {
	return events.EmitWith(ctx, t.s.write, t.tx, typ, orderID, data)
}

func (t txStore) AfterCommit(ctx context.Context, f func(ctx context.Context) error) {
	inbox.AfterCommit(ctx, f)
}
