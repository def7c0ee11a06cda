// Package pspsim simulates an external payment service provider, the way
// card providers behave in their test mode: it publishes a public key that
// merchants seal card numbers to (client-side encryption, see
// platform/cardcrypt), charges and refunds are idempotent on the
// Idempotency-Key header (a repeated key gets the first answer, as it was
// stored, failures included), and well-known test card numbers produce
// declines and processing errors (README, "Test cards").
//
// It fails the way real providers do, which is what payments must
// survive: a slow provider still charges after the client gave up (the
// latency fault does not stop the request), and the provider faults
// (PUT /admin/provider-faults) charge, then answer late, drop the
// connection or answer 500. GET /admin/charges is its ledger, the
// reconciliation view providers give merchants: the truth about money
// that the suite's own records are checked against.
//
// Its keys live in a keyring (PSP_KEY_FILE) and its ledger in a journal
// (PSP_LEDGER_FILE), so a restarted simulator remembers both, as a real
// provider would. No card number is stored anywhere.
package pspsim

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/cardcrypt"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/observe"
)

// Test cards (README, "Test cards").
const (
	CardDeclined          = "4000000000000002"
	CardInsufficientFunds = "4000000000009995"
	CardProcessingError   = "4000000000000119"
)

// Charge statuses in the ledger.
const (
	Approved = "approved"
	Refunded = "refunded"
)

// Config is what a simulator needs. Keys is required.
type Config struct {
	Keys *cardcrypt.Keyring
	// LedgerFile keeps the ledger (charges, refunds, the answer to every
	// idempotency key) across restarts; empty keeps it in memory only.
	LedgerFile string
}

// Simulator is the provider's state: issued charges and refunds, and the
// first answer to every idempotency key. It is safe for concurrent use.
type Simulator struct {
	keys   *cardcrypt.Keyring
	calls  metric.Int64Counter
	faults providerFaults
	log    *slog.Logger

	mu      sync.Mutex
	replies map[string]reply // "charge:<key>" or "refund:<key>" → first answer
	charges map[string]*ChargeRecord
	journal *journal // nil: in memory only
}

type reply struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// ChargeRecord is one charge as the provider's ledger has it.
type ChargeRecord struct {
	ChargeID       string    `json:"charge_id"`
	IdempotencyKey string    `json:"idempotency_key"`
	AmountCents    int64     `json:"amount_cents"`
	Status         string    `json:"status"` // approved or refunded
	CreatedAt      time.Time `json:"created_at"`
}

// New returns a simulator, with the ledger of cfg.LedgerFile if it has
// one. It counts requests, and logs a ledger that cannot be written,
// through tel.
func New(tel observe.Bundle, cfg Config) (*Simulator, error) {
	if cfg.Keys == nil {
		return nil, errors.New("pspsim: a keyring is required")
	}
	if err := tel.For("psp simulator"); err != nil {
		return nil, err
	}
	s := &Simulator{keys: cfg.Keys, log: tel.Logger, replies: map[string]reply{}, charges: map[string]*ChargeRecord{}}
	var err error
	if s.calls, err = tel.Meter("github.com/example/sagasuite/services/payments/internal/pspsim").Int64Counter("psp.requests",
		metric.WithDescription("Requests the simulator received, by operation and outcome."), metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	if cfg.LedgerFile != "" {
		j, err := openJournal(cfg.LedgerFile, s.replay)
		if err != nil {
			return nil, err
		}
		s.journal = j
	}
	return s, nil
}

// Lifecycle: the ledger is saved and closed at stop.
func (s *Simulator) Lifecycle() lifecycle.Parts { return lifecycle.Parts{Close: s.Close} }

// Close closes the ledger's journal.
func (s *Simulator) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil
	}
	return s.journal.Close()
}

// PublicKey is the key merchants seal card numbers to.
func (s *Simulator) PublicKey() cardcrypt.PublicKey { return s.keys.Current() }

// Routes registers every route the simulator serves beside /healthz,
// /readyz and /metrics: the provider API, and on admin the ledger, key
// rotation, fault injection and profiles. The injector's latency delays
// a request without stopping it when the client gives up.
func (s *Simulator) Routes(e *echo.Echo, admin *echo.Group, injector *faults.Injector) {
	e.Use(injector.Middleware)
	e.GET("/card-encryption-key", s.publicKey)
	e.POST("/charges", s.charge)
	e.POST("/refunds", s.refund)

	admin.GET("/charges", s.ledger)
	admin.POST("/card-encryption-key/rotate", s.rotate)
	admin.GET("/provider-faults", s.getFaults)
	admin.PUT("/provider-faults", s.putFaults)
	injector.Routes(admin)        // GET, PUT /admin/faults
	httpserver.PprofRoutes(admin) // GET /admin/debug/pprof/…
}

// FaultsProbe reports whether a provider fault is on, for faults.active.
func (s *Simulator) FaultsProbe() (string, bool) {
	return "after_charge", s.faults.get().AfterCharge != ""
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
	// Fingerprint is informative: a merchant must learn the fingerprints
	// it pins out of band, not from the answer it is checking.
	Fingerprint string `json:"fingerprint"`
}

func (s *Simulator) publicKey(c echo.Context) error {
	s.count(c, "key", "ok")
	k := s.keys.Current()
	return c.JSON(http.StatusOK, KeyResponse{Scheme: cardcrypt.Scheme, KeyID: k.ID, PublicKey: k.String(), Fingerprint: k.Fingerprint()})
}

// rotate makes a fresh key current; tokens sealed to the older keys still
// open. Merchants pick the new key up when they next fetch it.
func (s *Simulator) rotate(c echo.Context) error {
	k, err := s.keys.Rotate()
	if err != nil {
		// Nothing changed: the keyring makes a key current only once it
		// is saved, so the published key stays the one a restart keeps.
		s.log.ErrorContext(c.Request().Context(), "key rotation not saved; the current key is unchanged", "error", err)
		return httpserver.NewError(http.StatusServiceUnavailable, "keyring_not_saved",
			"the new key could not be saved; the current key is unchanged")
	}
	return c.JSON(http.StatusOK, map[string]any{"key_id": k.ID, "keys": s.keys.IDs()})
}

// Ledger is GET /admin/charges: every charge the provider made, oldest
// first.
type Ledger struct {
	Charges []ChargeRecord `json:"charges"`
}

func (s *Simulator) ledger(c echo.Context) error {
	s.mu.Lock()
	out := Ledger{Charges: make([]ChargeRecord, 0, len(s.charges))}
	for _, ch := range s.charges {
		out.Charges = append(out.Charges, *ch)
	}
	s.mu.Unlock()
	sort.Slice(out.Charges, func(i, j int) bool {
		a, b := out.Charges[i], out.Charges[j]
		return a.CreatedAt.Before(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ChargeID < b.ChargeID)
	})
	return c.JSON(http.StatusOK, out)
}

type chargeRequest struct {
	// OrderID and AmountCents are the payment the token was sealed for
	// (cardcrypt.Binding): a token opens for them only.
	OrderID     string `json:"order_id"`
	Token       string `json:"token"`
	AmountCents int64  `json:"amount_cents"`
}

// ChargeResponse is an approved charge.
type ChargeResponse struct {
	ChargeID    string `json:"charge_id"`
	Status      string `json:"status"`
	AmountCents int64  `json:"amount_cents"`
}

func idempotencyKey(c echo.Context) (string, bool) {
	key := c.Request().Header.Get("Idempotency-Key")
	return key, httpserver.Text(key, 255)
}

func (s *Simulator) charge(c echo.Context) error {
	var req chargeRequest
	if err := httpserver.Bind(c, &req); err != nil {
		return err
	}
	key, ok := idempotencyKey(c)
	fields := map[string]string{}
	if !ok {
		fields["Idempotency-Key"] = "header required, 1..255 characters of text"
	}
	if req.AmountCents <= 0 {
		fields["amount_cents"] = "must be positive"
	}
	if !httpserver.Text(req.OrderID, 255) {
		fields["order_id"] = "required, 1..255 characters of text"
	}
	card, err := s.keys.Open(req.Token, cardcrypt.Binding{OrderID: req.OrderID, AmountCents: req.AmountCents})
	if err != nil {
		fields["token"] = "not a card sealed to this provider's key for this order and amount"
	}
	if err := httpserver.Invalid(fields); err != nil {
		s.count(c, "charge", "invalid")
		return err
	}
	r, err := s.once("charge:"+key, func() (reply, *ChargeRecord) {
		switch card {
		case CardDeclined:
			return failure(http.StatusPaymentRequired, "card_declined", "the card was declined"), nil
		case CardInsufficientFunds:
			return failure(http.StatusPaymentRequired, "insufficient_funds", "the card was declined"), nil
		case CardProcessingError:
			// Stored like any answer: the key's charge failed, and a
			// retry with it is told so again, not charged.
			return failure(http.StatusInternalServerError, "processing_error", "the provider could not process the charge"), nil
		}
		ch := &ChargeRecord{ChargeID: "ch_" + uuid.NewString(), IdempotencyKey: key, AmountCents: req.AmountCents, Status: Approved,
			CreatedAt: time.Now().UTC()}
		return answer(http.StatusCreated, ChargeResponse{ChargeID: ch.ChargeID, Status: Approved, AmountCents: ch.AmountCents}), ch
	})
	if err != nil {
		return err
	}
	s.count(c, "charge", http.StatusText(r.Status))
	return s.respond(c, r)
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
	key, ok := idempotencyKey(c)
	if !ok || !httpserver.Text(req.ChargeID, 255) {
		s.count(c, "refund", "invalid")
		return httpserver.Invalid(map[string]string{"Idempotency-Key": "header required, 1..255 characters of text", "charge_id": "required"})
	}
	r, err := s.once("refund:"+key, func() (reply, *ChargeRecord) {
		ch, ok := s.charges[req.ChargeID]
		switch {
		case !ok:
			return failure(http.StatusNotFound, "charge_not_found", "no such charge"), nil
		case ch.Status == Refunded:
			return failure(http.StatusConflict, "charge_already_refunded", "the charge was refunded already"), nil
		}
		after := *ch
		after.Status = Refunded
		return answer(http.StatusCreated, RefundResponse{RefundID: "re_" + uuid.NewString(), ChargeID: ch.ChargeID, Status: Refunded,
			AmountCents: ch.AmountCents}), &after
	})
	if err != nil {
		return err
	}
	s.count(c, "refund", http.StatusText(r.Status))
	return s.respond(c, r)
}

// once answers a repeated idempotency key with the first answer; a new
// key gets what f decides, and the charge f made or changed is booked,
// both in the journal before anyone is answered.
func (s *Simulator) once(key string, f func() (reply, *ChargeRecord)) (reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.replies[key]; ok {
		return r, nil
	}
	r, ch := f()
	if s.journal != nil {
		if err := s.journal.write(entry{Key: key, Reply: &r, Charge: ch}); err != nil {
			s.log.Error("ledger cannot be written: nothing can be booked", "key", key, "error", err)
			return reply{}, httpserver.NewError(http.StatusServiceUnavailable, "ledger_unavailable", "the provider cannot book anything right now")
		}
	}
	s.apply(entry{Key: key, Reply: &r, Charge: ch})
	return r, nil
}

// apply books an entry in memory (as it happens, or replayed from the
// journal at start).
func (s *Simulator) apply(e entry) {
	if e.Reply != nil {
		s.replies[e.Key] = *e.Reply
	}
	if e.Charge != nil {
		ch := *e.Charge
		s.charges[ch.ChargeID] = &ch
	}
}

func (s *Simulator) replay(e entry) { s.apply(e) }

// respond writes r, or misbehaves after the work is done, as the provider
// faults say: the charge or refund stands however the answer goes.
func (s *Simulator) respond(c echo.Context, r reply) error {
	if r.Status < 300 {
		f := s.faults.get()
		if f.AfterCharge != "" && rand.Float64() < f.Rate { // #nosec G404 -- injected faults are a test aid, not a secret
			switch f.AfterCharge {
			case AfterChargeLate:
				// Not cut short when the client gives up: it is told late,
				// or never, that the money was taken.
				time.Sleep(time.Duration(f.LateMS) * time.Millisecond)
			case AfterChargeDrop:
				conn, _, err := http.NewResponseController(c.Response().Writer).Hijack()
				if err == nil {
					_ = conn.Close()
					return nil
				}
			case AfterChargeError:
				r = failure(http.StatusInternalServerError, "internal", "the provider failed after booking the request")
			}
		}
	}
	return c.Blob(r.Status, echo.MIMEApplicationJSON, r.Body)
}

func answer(status int, body any) reply {
	b, _ := json.Marshal(body)
	return reply{Status: status, Body: b}
}

func failure(status int, code, message string) reply {
	return answer(status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}
