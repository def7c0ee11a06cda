// Package appfake is payments' records in memory behind app.Store and
// app.Tx, for tests of the use cases that need no database. apptest holds
// it to the same suite as paymentsdb, so the two cannot drift apart.
package appfake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/example/sagasuite/services/payments/internal/app"
	"github.com/example/sagasuite/services/payments/internal/payment"
)

// Store holds intents, payments, planned calls and announced events.
// Transactions run one at a time and apply whole or not at all; what a
// transaction asks to run after its commit runs after it.
type Store struct {
	mu    sync.Mutex
	state state
	now   func() time.Time
}

type state struct {
	intents  map[string]payment.Intent
	payments map[string]payment.Payment // by order id
	calls    map[[2]string]call         // by order id and kind
	events   []Event
}

type call struct {
	payment.Call
	due time.Time
}

// Event is one announced event.
type Event struct {
	Type, OrderID string
	Data          any
}

// New returns an empty store.
func New() *Store {
	return &Store{now: time.Now, state: state{intents: map[string]payment.Intent{}, payments: map[string]payment.Payment{},
		calls: map[[2]string]call{}}}
}

var _ app.Store = (*Store)(nil)

func (s *Store) clone() state {
	return state{intents: maps.Clone(s.state.intents), payments: maps.Clone(s.state.payments),
		calls: maps.Clone(s.state.calls), events: slices.Clone(s.state.events)}
}

// InTx runs f on a copy of the records, keeps it if f succeeds, then runs
// what f asked to run after the commit.
func (s *Store) InTx(ctx context.Context, f func(app.Tx) error) error {
	s.mu.Lock()
	next := s.clone()
	t := &tx{st: &next, now: s.now}
	err := f(t)
	if err == nil {
		s.state = next
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, after := range t.after {
		if err := after(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Intent returns orderID's intent.
func (s *Store) Intent(_ context.Context, orderID string) (payment.Intent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.state.intents[orderID]
	if !ok {
		return in, fmt.Errorf("read payment intent %s: no such intent", orderID)
	}
	return in, nil
}

// Payment returns orderID's payment.
func (s *Store) Payment(_ context.Context, orderID string) (payment.Payment, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.state.payments[orderID]
	return p, ok, nil
}

// PostponeCall makes a call due again a second later (no later than notAfter).
func (s *Store) PostponeCall(_ context.Context, orderID, kind string, notAfter time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{orderID, kind}
	c, ok := s.state.calls[k]
	if !ok {
		return nil
	}
	c.due = s.now().Add(time.Second)
	if !notAfter.IsZero() && notAfter.Before(c.due) {
		c.due = notAfter
	}
	s.state.calls[k] = c
	return nil
}

// ClaimDue claims up to limit due calls for lease.
func (s *Store) ClaimDue(_ context.Context, limit int, lease time.Duration) ([]payment.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []payment.Call
	keys := slices.Collect(maps.Keys(s.state.calls))
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
	for _, k := range keys {
		c := s.state.calls[k]
		if len(out) == limit || c.due.After(s.now()) {
			continue
		}
		c.Attempts++
		c.due = s.now().Add(lease)
		s.state.calls[k] = c
		out = append(out, c.Call)
	}
	return out, nil
}

// Outstanding counts the planned calls by kind.
func (s *Store) Outstanding(context.Context) ([]payment.CallsOutstanding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []payment.CallsOutstanding{{Kind: payment.CallCharge}, {Kind: payment.CallRefund}}
	for _, c := range s.state.calls {
		for i := range out {
			if out[i].Kind == c.Kind {
				out[i].Count++
				out[i].Oldest = max(out[i].Oldest, s.now().Sub(c.CreatedAt))
			}
		}
	}
	return out, nil
}

// Events returns what was announced, in order.
func (s *Store) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.state.events)
}

type tx struct {
	st    *state
	now   func() time.Time
	after []func(context.Context) error
}

func (t *tx) UpdateIntent(_ context.Context, orderID string, c payment.IntentChange) (payment.Intent, error) {
	in, ok := t.st.intents[orderID]
	if !ok {
		in.OrderID = orderID
	}
	if c.Placed {
		if !in.Placed {
			in.PaymentToken = c.PaymentToken
		}
		in.CardLast4, in.AmountCents = c.CardLast4, c.AmountCents
	}
	in.Placed = in.Placed || c.Placed
	in.Reserved = in.Reserved || c.Reserved
	in.Cancelled = in.Cancelled || c.Cancelled
	t.st.intents[orderID] = in
	return in, nil
}

func (t *tx) Intent(_ context.Context, orderID string) (payment.Intent, error) {
	in, ok := t.st.intents[orderID]
	if !ok {
		return in, fmt.Errorf("read payment intent %s: no such intent", orderID)
	}
	return in, nil
}

func (t *tx) Payment(_ context.Context, orderID string) (payment.Payment, bool, error) {
	p, ok := t.st.payments[orderID]
	return p, ok, nil
}

func (t *tx) Insert(_ context.Context, p payment.Payment) error {
	if _, ok := t.st.payments[p.OrderID]; ok {
		return fmt.Errorf("record payment of %s: one exists", p.OrderID)
	}
	t.st.payments[p.OrderID] = p
	return nil
}

func (t *tx) update(paymentID string, f func(p *payment.Payment)) {
	for id, p := range t.st.payments {
		if p.PaymentID == paymentID {
			f(&p)
			t.st.payments[id] = p
		}
	}
}

func (t *tx) SetStatus(_ context.Context, paymentID, status, reason string) error {
	t.update(paymentID, func(p *payment.Payment) { p.Status, p.Reason = status, reason })
	return nil
}

func (t *tx) SetChargeID(_ context.Context, paymentID, chargeID string) error {
	t.update(paymentID, func(p *payment.Payment) { p.ChargeID = chargeID })
	return nil
}

func (t *tx) ForgetToken(_ context.Context, orderID string) error {
	if in, ok := t.st.intents[orderID]; ok {
		in.PaymentToken = ""
		t.st.intents[orderID] = in
	}
	return nil
}

func (t *tx) PlanCall(_ context.Context, orderID, kind string, lease time.Duration) (bool, error) {
	k := [2]string{orderID, kind}
	if _, ok := t.st.calls[k]; ok {
		return false, nil
	}
	t.st.calls[k] = call{Call: payment.Call{OrderID: orderID, Kind: kind, CreatedAt: t.now()}, due: t.now().Add(lease)}
	return true, nil
}

func (t *tx) PlanCharge(ctx context.Context, orderID string, lease time.Duration) (bool, error) {
	if _, paid := t.st.payments[orderID]; paid {
		return false, nil
	}
	return t.PlanCall(ctx, orderID, payment.CallCharge, lease)
}

func (t *tx) PlannedCall(_ context.Context, orderID, kind string) (payment.Call, bool, error) {
	c, ok := t.st.calls[[2]string{orderID, kind}]
	return c.Call, ok, nil
}

func (t *tx) Settling(ctx context.Context, orderID, kind string) (app.Settling, error) {
	var st app.Settling
	var err error
	if st.Intent, err = t.Intent(ctx, orderID); err != nil {
		return st, err
	}
	st.Call, st.CallFound, _ = t.PlannedCall(ctx, orderID, kind)
	st.Payment, st.PaymentFound, _ = t.Payment(ctx, orderID)
	return st, nil
}

func (t *tx) CallDone(_ context.Context, orderID, kind string) error {
	delete(t.st.calls, [2]string{orderID, kind})
	return nil
}

func (t *tx) Emit(_ context.Context, typ, orderID string, data any) error {
	t.st.events = append(t.st.events, Event{Type: typ, OrderID: orderID, Data: data})
	return nil
}

func (t *tx) AfterCommit(_ context.Context, f func(ctx context.Context) error) {
	t.after = append(t.after, f)
}
