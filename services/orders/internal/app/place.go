// Package app holds orders' use cases: placing an order (validate, honour
// the idempotency key, quote prices, tokenize the card, store the order and
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
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/internal/postgres"
	"github.com/example/sagasuite/services/orders/internal/saga"
)

// Quoter prices SKUs; unknown SKUs are absent from the answer.
type Quoter interface {
	Prices(ctx context.Context, skus []string) (map[string]int64, error)
}

// Tokenizer exchanges a card number for the provider's token.
type Tokenizer interface {
	Tokenize(ctx context.Context, card string) (token, last4 string, err error)
}

// Repo stores orders.
type Repo interface {
	Create(ctx context.Context, placed order.Event, key *postgres.Key, msgs ...outbox.Message) (order.Order, error)
	Get(ctx context.Context, id string) (order.Order, error)
	Events(ctx context.Context, id string) ([]eventstore.Event, error)
	KeyOwner(ctx context.Context, key string) (orderID string, fingerprint []byte, found bool, err error)
}

// Errors the HTTP layer maps to status codes.
var (
	ErrKeyReused            = errors.New("idempotency key was used with a different request")
	ErrInventoryUnavailable = errors.New("inventory unavailable")
	ErrPaymentUnavailable   = errors.New("payment provider unavailable")
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
}

// Orders runs the use cases.
type Orders struct {
	repo      Repo
	quoter    Quoter
	tokenizer Tokenizer
	now       func() time.Time
	placed    metric.Int64Counter
}

// New returns the use cases.
func New(repo Repo, quoter Quoter, tokenizer Tokenizer, meter metric.Meter) (*Orders, error) {
	placed, err := meter.Int64Counter("orders.placed", metric.WithDescription("Orders accepted by POST /orders."), metric.WithUnit("{order}"))
	if err != nil {
		return nil, err
	}
	return &Orders{repo: repo, quoter: quoter, tokenizer: tokenizer, now: time.Now, placed: placed}, nil
}

// Place accepts a new order, or returns the order an earlier request with
// the same idempotency key created.
func (s *Orders) Place(ctx context.Context, req PlaceRequest) (order.Order, error) {
	if bad := order.ValidatePlace(req.CustomerID, req.Lines, req.CardNumber); len(bad) > 0 {
		return order.Order{}, &InvalidError{Fields: bad}
	}
	var key *postgres.Key
	if req.IdempotencyKey != "" {
		key = &postgres.Key{Key: req.IdempotencyKey, Fingerprint: fingerprint(req)}
		if o, found, err := s.replay(ctx, key); found || err != nil {
			return o, err
		}
	}

	skus := make([]string, len(req.Lines))
	for i, l := range req.Lines {
		skus[i] = l.SKU
	}
	prices, err := s.quoter.Prices(ctx, skus)
	if err != nil {
		return order.Order{}, fmt.Errorf("%w: %w", ErrInventoryUnavailable, err)
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
		return order.Order{}, &UnknownSKUError{SKUs: unknown}
	}
	token, last4, err := s.tokenizer.Tokenize(ctx, req.CardNumber)
	if err != nil {
		return order.Order{}, fmt.Errorf("%w: %w", ErrPaymentUnavailable, err)
	}

	id := uuid.Must(uuid.NewV7()).String() // time-ordered: index-friendly
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("order.id", id))
	placed := order.Place(id, req.CustomerID, items, last4, s.now().UTC().Truncate(time.Microsecond)) // PostgreSQL keeps microseconds
	msg, err := saga.Placed(placed, saga.Payment{Token: token, CardLast4: last4})
	if err != nil {
		return order.Order{}, err
	}
	o, err := s.repo.Create(ctx, placed, key, msg)
	if errors.Is(err, postgres.ErrKeyTaken) {
		// A concurrent request with the same key won the race.
		o, _, err = s.replay(ctx, key)
		return o, err
	}
	if err != nil {
		return o, err
	}
	s.placed.Add(ctx, 1)
	return o, nil
}

// replay answers a request whose key was seen before.
func (s *Orders) replay(ctx context.Context, key *postgres.Key) (order.Order, bool, error) {
	id, fp, found, err := s.repo.KeyOwner(ctx, key.Key)
	if err != nil || !found {
		return order.Order{}, false, err
	}
	if !slices.Equal(fp, key.Fingerprint) {
		return order.Order{}, true, ErrKeyReused
	}
	trace.SpanFromContext(ctx).AddEvent("idempotent replay", trace.WithAttributes(attribute.String("order.id", id)))
	o, err := s.repo.Get(ctx, id)
	return o, true, err
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

// Get returns an order from the read model.
func (s *Orders) Get(ctx context.Context, id string) (order.Order, error) { return s.repo.Get(ctx, id) }

// Events returns an order's event stream, or order.ErrNotFound.
func (s *Orders) Events(ctx context.Context, id string) ([]eventstore.Event, error) {
	events, err := s.repo.Events(ctx, id)
	if err == nil && len(events) == 0 {
		err = fmt.Errorf("%s: %w", id, order.ErrNotFound)
	}
	return events, err
}
