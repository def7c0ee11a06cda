// Package pspsim simulates an external payment service provider, the way
// card providers behave in their test mode: it publishes a public key that
// merchants seal card numbers to (client-side encryption, see
// platform/cardcrypt), charges and refunds are idempotent on the
// Idempotency-Key header, and well-known test card numbers produce
// declines and processing errors (CONTRACT.md).
//
// Its keys are random and live in a keyring (PSP_KEY_FILE keeps them
// across restarts and shares them between replicas); rotating adds a key
// and keeps the old ones for tokens already sealed. No card number is
// stored anywhere.
package pspsim

import (
	"net/http"
	"sync"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/cardcrypt"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
)

// Test cards (CONTRACT.md).
const (
	CardDeclined          = "4000000000000002"
	CardInsufficientFunds = "4000000000009995"
	CardProcessingError   = "4000000000000119"
)

// Simulator is the provider's state: issued charges and refunds by
// idempotency key. It is safe for concurrent use.
type Simulator struct {
	keys  *cardcrypt.Keyring
	calls metric.Int64Counter

	mu      sync.Mutex
	replies map[string]reply // idempotency key → first answer
	charges map[string]int64 // charge id → amount
}

type reply struct {
	status int
	body   any
}

// New returns a simulator that opens tokens with keys.
func New(keys *cardcrypt.Keyring, meter metric.Meter) (*Simulator, error) {
	calls, err := meter.Int64Counter("psp.requests", metric.WithDescription("Requests the simulator received, by operation and outcome."),
		metric.WithUnit("{request}"))
	if err != nil {
		return nil, err
	}
	return &Simulator{keys: keys, calls: calls, replies: map[string]reply{}, charges: map[string]int64{}}, nil
}

// PublicKey is the key merchants seal card numbers to.
func (s *Simulator) PublicKey() cardcrypt.PublicKey { return s.keys.Current() }

// Routes registers every route the simulator serves beside /healthz,
// /readyz and /metrics: the provider API, and on admin the key rotation,
// fault injection and profiles.
func (s *Simulator) Routes(e *echo.Echo, admin *echo.Group, injector *faults.Injector) {
	e.Use(injector.Middleware) // injected latency and errors, on the API only
	e.GET("/card-encryption-key", s.publicKey)
	e.POST("/charges", s.charge)
	e.POST("/refunds", s.refund)

	admin.POST("/card-encryption-key/rotate", s.rotate)
	injector.Routes(admin)        // GET, PUT /admin/faults
	httpserver.PprofRoutes(admin) // GET /admin/debug/pprof/…
}

func (s *Simulator) count(c echo.Context, op, outcome string) {
	s.calls.Add(c.Request().Context(), 1, metric.WithAttributes(attribute.String("operation", op), attribute.String("outcome", outcome)))
}

// KeyResponse publishes the card-encryption key: its id and the key as
// cardcrypt.PublicKey's text ("<id>:<base64url>").
type KeyResponse struct {
	Scheme    string `json:"scheme"`
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
}

func (s *Simulator) publicKey(c echo.Context) error {
	s.count(c, "key", "ok")
	k := s.keys.Current()
	return c.JSON(http.StatusOK, KeyResponse{Scheme: cardcrypt.Scheme, KeyID: k.ID, PublicKey: k.String()})
}

// rotate makes a fresh key current; tokens sealed to the older keys still
// open. Merchants pick the new key up when they next fetch it.
func (s *Simulator) rotate(c echo.Context) error {
	k, err := s.keys.Rotate()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"key_id": k.ID, "keys": s.keys.IDs()})
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
	card, err := s.keys.Open(req.Token)
	if err != nil {
		fields["token"] = "not a card sealed to this provider's key"
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
