// Package app holds orders' use cases: placing an order (validate, honour
// the idempotency key, quote prices, seal the card to the provider, store the order and
// its OrderPlaced announcement in one transaction) and reading orders.
package app

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/services/orders/internal/announce"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/orderevents"
)

// Quoter prices SKUs; unknown SKUs are absent from the answer. An error
// that wraps ErrQuoteRefused means the SKUs themselves were refused.
type Quoter interface {
	Prices(ctx context.Context, skus []string) (map[string]int64, error)
}

// Tokenizer exchanges a card number for the provider's token, good for
// one payment only: the order's id and total.
type Tokenizer interface {
	Tokenize(ctx context.Context, card, orderID string, amountCents int64) (token string, err error)
}

// Store keeps orders: the command side. It owns its transactions.
type Store interface {
	// Create stores a new order from its first event, with the
	// idempotency key (if any) and msgs, at once. A key stored by a
	// concurrent request first fails it with ErrKeyTaken.
	Create(ctx context.Context, placed order.Event, key *IdempotencyKey, meta map[string]string, msgs ...outbox.Message) (order.Order, int64, error)
	// Update loads the order, lets decide look at it and appends the
	// events it returns, with meta; a concurrent change first fails it
	// with eventstore.ErrVersionConflict.
	Update(ctx context.Context, id string, meta map[string]string, decide func(o *order.Order) ([]order.Event, error)) (order.Order, int64, error)
	// Current is the order as its events have it now.
	Current(ctx context.Context, id string) (order.Order, error)
}

// Idempotency finds the order an idempotency key was used for.
type Idempotency interface {
	KeyOwner(ctx context.Context, key string) (orderID string, fingerprint []byte, found bool, err error)
}

// History reads an order's past from its events.
type History interface {
	AsOf(ctx context.Context, id string, t time.Time) (order.Order, error)
	Events(ctx context.Context, id string) ([]eventstore.Event, error)
}

// IdempotencyKey is a client's Idempotency-Key and the fingerprint of the
// request it came with.
type IdempotencyKey struct {
	Key         string
	Fingerprint []byte
}

// ErrKeyTaken is what Store.Create returns when a concurrent request
// stored the same idempotency key first.
var ErrKeyTaken = errors.New("idempotency key already used")

// Reader queries the read model.
type Reader interface {
	Get(ctx context.Context, id string) (order.Order, error)
	List(ctx context.Context, f Filter) ([]order.Order, string, error)
	// Pending counts the orders not yet in a terminal status.
	Pending(ctx context.Context) (int64, error)
}

// Filter selects a page of orders, newest first.
type Filter struct {
	CustomerID string
	Status     order.Status
	Limit      int
	Cursor     string // from the previous page; empty for the first
}

// ErrBadCursor means a cursor this service did not issue.
var ErrBadCursor = errors.New("invalid cursor")

// Projection is the read model's projector as queries need it.
type Projection interface {
	// WaitFor returns once the read model holds the event at position.
	WaitFor(ctx context.Context, position int64) error
	// Watch returns a channel that receives the first event of streamID
	// above version (of one of types, if any) once the projector has
	// applied it, and a func that stops watching.
	Watch(streamID string, version int64, types ...string) (<-chan eventstore.Event, func())
	// Active reports whether this replica runs the projector (and so
	// Watch sees its events).
	Active() bool
}

// Errors the HTTP layer maps to status codes.
var (
	// ErrBudgetSpent means placing the order did not fit its time budget;
	// nothing was stored.
	ErrBudgetSpent          = errors.New("the order could not be placed within its time budget")
	ErrKeyReused            = errors.New("idempotency key was used with a different request")
	ErrInventoryUnavailable = errors.New("inventory unavailable")
	ErrPaymentUnavailable   = errors.New("payment provider unavailable")
	// ErrQuoteRefused is what a Quoter's error wraps when inventory
	// refused the request (a 4xx): the client's input, not inventory, was
	// at fault.
	ErrQuoteRefused = errors.New("quote refused")
)

// InvalidError lists the request's bad fields.
type InvalidError struct{ Fields map[string]string }

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid order: %v", e.Fields) }

// UnknownSKUError names the SKUs inventory does not sell.
type UnknownSKUError struct{ SKUs []string }

func (e *UnknownSKUError) Error() string { return "unknown SKUs: " + strings.Join(e.SKUs, ", ") }

// PlaceRequest is a new order as the client sent it.
type PlaceRequest struct {
	CustomerID     string
	Lines          []order.Line
	CardNumber     string
	IdempotencyKey string // optional
	RequestID      string // recorded as the OrderPlaced event's causation id
}

// Orders runs the use cases.
type Orders struct {
	store     Store
	keys      Idempotency
	history   History
	reader    Reader
	proj      Projection
	quoter    Quoter
	tokenizer Tokenizer
	readWait  time.Duration
	budget    time.Duration
	now       func() time.Time
	placed    metric.Int64Counter
	shed      metric.Int64Counter
	limiter   Limiter
	inflight  *InFlight
}

// Deps are the collaborators of the use cases; all but Limiter and
// InFlight are required.
type Deps struct {
	Store       Store
	Idempotency Idempotency
	History     History
	Reader      Reader
	Projection  Projection
	Quoter      Quoter
	Tokenizer   Tokenizer
	// Limiter and InFlight shed load at the door (optional: nil accepts
	// every order, and a backlog grows when load exceeds capacity).
	Limiter  Limiter
	InFlight *InFlight
}

// Config tunes the use cases. The zero value is valid.
type Config struct {
	// ReadWait bounds how long a query waits for the read model to reach
	// a client's own write; 0 means 2 s.
	ReadWait time.Duration
	// PlaceTimeout is the whole time budget of placing an order (quote,
	// sealing, storing); 0 means 1 s.
	PlaceTimeout time.Duration
}

// New returns the use cases, counting placed and shed orders through tel.
func New(d Deps, tel observe.Bundle, cfg Config) (*Orders, error) {
	if d.Store == nil || d.Idempotency == nil || d.History == nil || d.Reader == nil || d.Projection == nil || d.Quoter == nil || d.Tokenizer == nil {
		return nil, errors.New("orders: every dependency is required")
	}
	if err := tel.For("orders"); err != nil {
		return nil, err
	}
	if cfg.ReadWait <= 0 {
		cfg.ReadWait = 2 * time.Second
	}
	if cfg.PlaceTimeout <= 0 {
		cfg.PlaceTimeout = time.Second
	}
	meter := tel.Meter("github.com/example/sagasuite/services/orders")
	placed, err := meter.Int64Counter("orders.placed", metric.WithDescription("Orders accepted by POST /orders."), metric.WithUnit("{order}"))
	if err != nil {
		return nil, err
	}
	shed, err := meter.Int64Counter("orders.shed", metric.WithDescription("Orders refused at the door (503 overloaded), by reason."),
		metric.WithUnit("{order}"))
	if err != nil {
		return nil, err
	}
	// Exported at zero from the start, so dashboards and alerts see the
	// series before the first refusal.
	shed.Add(context.Background(), 0, metric.WithAttributes(attribute.String("reason", "saga_limit")))
	shed.Add(context.Background(), 0, metric.WithAttributes(attribute.String("reason", "outbox_backlog")))
	if (d.Limiter == nil) != (d.InFlight == nil) {
		return nil, errors.New("orders: Limiter and InFlight go together")
	}
	return &Orders{store: d.Store, keys: d.Idempotency, history: d.History, reader: d.Reader, proj: d.Projection, quoter: d.Quoter, tokenizer: d.Tokenizer,
		readWait: cfg.ReadWait, budget: cfg.PlaceTimeout, now: time.Now, placed: placed, shed: shed,
		limiter: d.Limiter, inflight: d.InFlight}, nil
}

// Result is a command's outcome: the order as the command left it, and the
// global position of its last event, which queries accept to read their
// own write (read-your-writes).
type Result struct {
	Order    order.Order
	Position int64
}

// Place accepts a new order, or returns the order an earlier request with
// the same idempotency key created. It answers within its time budget
// whatever its dependencies do.
func (s *Orders) Place(ctx context.Context, req PlaceRequest) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	r, err := s.place(ctx, req)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrInventoryUnavailable) && !errors.Is(err, ErrOverloaded) {
		err = fmt.Errorf("%w: %w", ErrBudgetSpent, err)
	}
	return r, err
}

func (s *Orders) place(ctx context.Context, req PlaceRequest) (Result, error) {
	if bad := order.ValidatePlace(req.CustomerID, req.Lines, req.CardNumber); len(bad) > 0 {
		return Result{}, &InvalidError{Fields: bad}
	}
	var key *IdempotencyKey
	if req.IdempotencyKey != "" {
		key = &IdempotencyKey{Key: req.IdempotencyKey, Fingerprint: fingerprint(req)}
		if r, found, err := s.replay(ctx, key); found || err != nil {
			return r, err
		}
	}
	// Refused at the door, before any work, when the suite is behind.
	if err := s.admit(ctx); err != nil {
		return Result{}, err
	}

	skus := make([]string, len(req.Lines))
	for i, l := range req.Lines {
		skus[i] = l.SKU
	}
	prices, err := s.quoter.Prices(ctx, skus)
	if errors.Is(err, ErrQuoteRefused) {
		return Result{}, &InvalidError{Fields: map[string]string{"items": "inventory cannot quote these SKUs"}}
	}
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrInventoryUnavailable, err)
	}
	items := make([]order.Item, len(req.Lines))
	var unknown []string
	for i, l := range req.Lines {
		price, ok := prices[l.SKU]
		if !ok {
			unknown = append(unknown, l.SKU)
		}
		items[i] = order.Item{SKU: l.SKU, Quantity: l.Quantity, UnitPriceCents: price}
	}
	if len(unknown) > 0 {
		return Result{}, &UnknownSKUError{SKUs: unknown}
	}
	id := uuid.Must(uuid.NewV7()).String() // time-ordered: index-friendly
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order.id", id))
	last4 := req.CardNumber[len(req.CardNumber)-4:]
	placed := order.Place(id, req.CustomerID, items, last4, s.now().UTC().Truncate(time.Microsecond)) // PostgreSQL keeps microseconds
	// The token pays for this order's total and nothing else.
	token, err := s.tokenizer.Tokenize(ctx, req.CardNumber, id, placed.Data.(order.Placed).TotalCents)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrPaymentUnavailable, err)
	}
	msg, err := announce.Placed(placed, orderevents.Payment{Token: token, CardLast4: last4})
	if err != nil {
		return Result{}, err
	}
	o, pos, err := s.store.Create(ctx, placed, key, map[string]string{"causation_type": "http", "causation_id": req.RequestID}, msg)
	if err != nil && ctx.Err() != nil {
		// The budget ran out while storing: the COMMIT may have gone
		// through all the same. An order that was stored is answered as
		// accepted: told "retry later", a client without a key would
		// place it twice.
		if stored, found := s.lookUp(context.WithoutCancel(ctx), id); found {
			trace.SpanFromContext(ctx).AddEvent("stored after the budget ran out: answered as accepted")
			o, pos, err = stored, 0, nil
		}
	}
	if errors.Is(err, ErrKeyTaken) {
		// A concurrent request with the same key won the race.
		r, _, err := s.replay(ctx, key)
		return r, err
	}
	if err != nil {
		return Result{}, err
	}
	s.placed.Add(ctx, 1)
	if s.inflight != nil {
		s.inflight.accepted.Add(1)
	}
	return Result{Order: o, Position: pos}, nil
}

// lookUp reads order id from the event store after a write whose outcome
// its caller did not see, for up to 300 ms: a COMMIT sent before the
// connection was given up can still land just after.
func (s *Orders) lookUp(ctx context.Context, id string) (order.Order, bool) {
	ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	for {
		o, err := s.store.Current(ctx, id)
		if err == nil {
			return o, true
		}
		select {
		case <-ctx.Done():
			return order.Order{}, false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// replay answers a request whose key was seen before, with the order as
// the event store has it now.
func (s *Orders) replay(ctx context.Context, key *IdempotencyKey) (Result, bool, error) {
	id, fp, found, err := s.keys.KeyOwner(ctx, key.Key)
	if err != nil || !found {
		return Result{}, false, err
	}
	if !slices.Equal(fp, key.Fingerprint) {
		return Result{}, true, ErrKeyReused
	}
	trace.SpanFromContext(ctx).AddEvent("idempotent replay", trace.WithAttributes(attribute.String("order.id", id)))
	o, err := s.store.Current(ctx, id)
	return Result{Order: o}, true, err
}

// fingerprint identifies a request for idempotency. It leaves out the card
// number (only its last four digits count), so nothing derived from a full
// card number is stored.
func fingerprint(req PlaceRequest) []byte {
	last4 := req.CardNumber[len(req.CardNumber)-4:]
	b, _ := json.Marshal(struct {
		C string
		L []order.Line
		P string
	}{req.CustomerID, req.Lines, last4})
	sum := sha256.Sum256(b)
	return sum[:]
}
