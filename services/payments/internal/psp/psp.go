// Package psp simulates an external payment service provider, the way
// Stripe-like providers behave in their test mode: card numbers are turned
// into opaque tokens, charges and refunds are idempotent on the
// Idempotency-Key header, and well-known test card numbers produce
// declines and processing errors (CONTRACT.md).
//
// Tokens are the card number sealed with AES-GCM under the simulator's key
// ("vaultless tokenization"), so a restarted simulator still accepts the
// tokens it issued and no card number needs to be stored anywhere else.
package psp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/httpserver"
)

// Test cards (CONTRACT.md).
const (
	CardDeclined          = "4000000000000002"
	CardInsufficientFunds = "4000000000009995"
	CardProcessingError   = "4000000000000119"
)

var cardPattern = regexp.MustCompile(`^[0-9]{12,19}$`)

// Simulator is the provider's state: issued charges and refunds by
// idempotency key. It is safe for concurrent use.
type Simulator struct {
	aead  cipher.AEAD
	calls metric.Int64Counter

	mu      sync.Mutex
	replies map[string]reply // idempotency key → first answer
	charges map[string]int64 // charge id → amount
}

type reply struct {
	status int
	body   any
}

// New returns a simulator whose tokens are sealed with a key derived from
// secret.
func New(secret string, meter metric.Meter) (*Simulator, error) {
	if secret == "" {
		return nil, errors.New("psp: token secret is required")
	}
	key := sha256.Sum256([]byte(secret))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("psp: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("psp: %w", err)
	}
	calls, err := meter.Int64Counter("psp.requests", metric.WithDescription("Requests the simulator received, by operation and outcome."),
		metric.WithUnit("{request}"))
	if err != nil {
		return nil, err
	}
	return &Simulator{aead: aead, calls: calls, replies: map[string]reply{}, charges: map[string]int64{}}, nil
}

// Routes registers the provider API.
func (s *Simulator) Routes(e *echo.Echo) {
	e.POST("/tokens", s.tokenize)
	e.POST("/charges", s.charge)
	e.POST("/refunds", s.refund)
}

func (s *Simulator) count(c echo.Context, op, outcome string) {
	s.calls.Add(c.Request().Context(), 1, metric.WithAttributes(attribute.String("operation", op), attribute.String("outcome", outcome)))
}

type tokenRequest struct {
	CardNumber string `json:"card_number"`
}

type tokenResponse struct {
	Token     string `json:"token"`
	CardLast4 string `json:"card_last4"`
}

func (s *Simulator) tokenize(c echo.Context) error {
	var req tokenRequest
	if err := httpserver.Bind(c, &req); err != nil {
		return err
	}
	if !cardPattern.MatchString(req.CardNumber) {
		s.count(c, "tokenize", "invalid")
		return httpserver.Invalid(map[string]string{"card_number": "12 to 19 digits"})
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := s.aead.Seal(nonce, nonce, []byte(req.CardNumber), nil)
	s.count(c, "tokenize", "ok")
	return c.JSON(http.StatusCreated, tokenResponse{
		Token:     "tok_" + base64.RawURLEncoding.EncodeToString(sealed),
		CardLast4: req.CardNumber[len(req.CardNumber)-4:],
	})
}

func (s *Simulator) card(token string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, "tok_"))
	if err != nil || len(raw) < s.aead.NonceSize() || !strings.HasPrefix(token, "tok_") {
		return "", false
	}
	n := s.aead.NonceSize()
	card, err := s.aead.Open(nil, raw[:n], raw[n:], nil)
	return string(card), err == nil
}

type chargeRequest struct {
	Token       string `json:"token"`
	AmountCents int64  `json:"amount_cents"`
}

// ChargeResponse is an approved charge.
type ChargeResponse struct {
	ChargeID    string `json:"charge_id"`
	Status      string `json:"status"`
	AmountCents int64  `json:"amount_cents"`
}

func (s *Simulator) charge(c echo.Context) error {
	var req chargeRequest
	if err := httpserver.Bind(c, &req); err != nil {
		return err
	}
	key := c.Request().Header.Get("Idempotency-Key")
	fields := map[string]string{}
	if key == "" || len(key) > 255 {
		fields["Idempotency-Key"] = "header required, 1..255 characters"
	}
	if req.AmountCents <= 0 {
		fields["amount_cents"] = "must be positive"
	}
	card, ok := s.card(req.Token)
	if !ok {
		fields["token"] = "not a token this provider issued"
	}
	if err := httpserver.Invalid(fields); err != nil {
		s.count(c, "charge", "invalid")
		return err
	}
	if card == CardProcessingError {
		s.count(c, "charge", "error")
		return httpserver.NewError(http.StatusInternalServerError, "processing_error", "the provider could not process the charge")
	}
	r := s.once("charge:"+key, func() reply {
		switch card {
		case CardDeclined:
			return reply{http.StatusPaymentRequired, declined("card_declined")}
		case CardInsufficientFunds:
			return reply{http.StatusPaymentRequired, declined("insufficient_funds")}
		}
		id := "ch_" + uuid.NewString()
		s.charges[id] = req.AmountCents
		return reply{http.StatusCreated, ChargeResponse{ChargeID: id, Status: "approved", AmountCents: req.AmountCents}}
	})
	s.count(c, "charge", http.StatusText(r.status))
	return c.JSON(r.status, r.body)
}

type refundRequest struct {
	ChargeID string `json:"charge_id"`
}

// RefundResponse is a completed refund.
type RefundResponse struct {
	RefundID    string `json:"refund_id"`
	ChargeID    string `json:"charge_id"`
	Status      string `json:"status"`
	AmountCents int64  `json:"amount_cents"`
}

func (s *Simulator) refund(c echo.Context) error {
	var req refundRequest
	if err := httpserver.Bind(c, &req); err != nil {
		return err
	}
	key := c.Request().Header.Get("Idempotency-Key")
	if key == "" || len(key) > 255 || req.ChargeID == "" {
		s.count(c, "refund", "invalid")
		return httpserver.Invalid(map[string]string{"Idempotency-Key": "header required", "charge_id": "required"})
	}
	r := s.once("refund:"+key, func() reply {
		amount, ok := s.charges[req.ChargeID]
		if !ok {
			return reply{http.StatusNotFound, map[string]any{"error": map[string]string{"code": "charge_not_found", "message": "no such charge"}}}
		}
		delete(s.charges, req.ChargeID)
		return reply{http.StatusCreated, RefundResponse{RefundID: "re_" + uuid.NewString(), ChargeID: req.ChargeID, Status: "refunded", AmountCents: amount}}
	})
	s.count(c, "refund", http.StatusText(r.status))
	return c.JSON(r.status, r.body)
}

// once answers a repeated idempotency key with the first answer.
func (s *Simulator) once(key string, f func() reply) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.replies[key]; ok {
		return r
	}
	r := f()
	s.replies[key] = r
	return r
}

func declined(code string) any {
	return map[string]any{"error": map[string]string{"code": code, "message": "the card was declined"}}
}
