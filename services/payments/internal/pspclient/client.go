// Package pspclient calls the payment service provider. Every call carries
// an idempotency key, which is what makes retrying a charge safe: the
// provider answers a repeated key with its first answer. Charges and
// refunds run in separate bulkheads behind one breaker for the provider,
// so a flood of slow charges cannot starve the refunds that compensate
// cancelled orders.
package pspclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/example/sagasuite/platform/guard"
)

// ErrTransient marks failures worth retrying: timeouts, connection errors,
// 5xx answers.
var ErrTransient = errors.New("psp unavailable")

// DeclinedError is the provider's refusal of a charge; Reason is its code
// (card_declined, insufficient_funds).
type DeclinedError struct{ Reason string }

func (e *DeclinedError) Error() string { return "charge declined: " + e.Reason }

// ErrChargeNotFound means the provider knows no such charge to refund.
var ErrChargeNotFound = errors.New("psp: charge not found")

// Transient reports whether err is worth retrying and counts against the
// provider's breaker. Declines are answers, not failures.
func Transient(err error) bool { return errors.Is(err, ErrTransient) }

// Guards are the policies around each kind of call.
type Guards struct {
	Charge guard.Guard
	Refund guard.Guard
}

// Client talks to one provider base URL.
type Client struct {
	base   string
	http   *http.Client
	guards Guards
}

// New returns a client for baseURL whose attempts time out after timeout,
// under g (the zero Guards: plain calls).
func New(baseURL string, timeout time.Duration, g Guards, rt http.RoundTripper) *Client {
	return &Client{base: baseURL, guards: g, http: &http.Client{Timeout: timeout, Transport: rt}}
}

// Charge is an approved charge.
type Charge struct {
	ChargeID string `json:"charge_id"`
}

// Charge asks the provider to take amount from the card behind token.
func (c *Client) Charge(ctx context.Context, key, token string, amountCents int64) (Charge, error) {
	var ch Charge
	err := c.guards.Charge.Do(ctx, func(ctx context.Context) error {
		return c.post(ctx, "/charges", key, map[string]any{"token": token, "amount_cents": amountCents}, &ch)
	})
	return ch, err
}

// Refund returns a charge's money.
func (c *Client) Refund(ctx context.Context, key, chargeID string) error {
	return c.guards.Refund.Do(ctx, func(ctx context.Context) error {
		return c.post(ctx, "/refunds", key, map[string]any{"charge_id": chargeID}, nil)
	})
}

func (c *Client) post(ctx context.Context, path, key string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("psp %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("psp %s: %w: %w", path, ErrTransient, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("psp %s: %w: %w", path, ErrTransient, err)
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("psp %s: %w: status %d", path, ErrTransient, resp.StatusCode)
	case resp.StatusCode == http.StatusPaymentRequired:
		_ = json.Unmarshal(raw, &e)
		return &DeclinedError{Reason: e.Error.Code}
	case resp.StatusCode == http.StatusNotFound && path == "/refunds":
		return ErrChargeNotFound
	case resp.StatusCode >= 300:
		return fmt.Errorf("psp %s: status %d: %s", path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("psp %s: decode answer: %w", path, err)
		}
	}
	return nil
}
