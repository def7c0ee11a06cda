// Package pspclient calls the payment service provider. Every call carries
// an idempotency key, which is what makes retrying a charge safe: the
// provider answers a repeated key with its first answer. Charges and
// refunds run in separate bulkheads behind one breaker for the provider,
// so a flood of slow charges cannot starve the refunds that compensate
// cancelled orders.
//
// A failed call answers in the domain's terms (package payment): a
// declined card (*payment.DeclinedError); a request the provider refused
// (payment.ErrRefused: a 4xx, or its processing_error, which it stores as
// the key's answer); a request that never left this process
// (payment.ErrNotSent: the breaker was open, the bulkhead full, no time
// left, the connection refused); anything else (a timeout, a reset, a 5xx
// or a 429) is unknown (payment.Unknown) and resolved by the same call
// with the same key.
package pspclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/httpstatus"
	"github.com/example/sagasuite/services/payments/internal/payment"
)

// ErrTransient marks failures worth retrying (and counted by the breaker):
// timeouts, connection errors, 5xx and 429 answers.
var ErrTransient = errors.New("psp unavailable")

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

// Charge asks the provider to take amount from the card behind token.
func (c *Client) Charge(ctx context.Context, key, orderID, token string, amountCents int64) (payment.Charge, error) {
	var ch payment.Charge
	err := c.call(ctx, c.guards.Charge, "/charges", key, map[string]any{"order_id": orderID, "token": token, "amount_cents": amountCents}, &ch)
	return ch, err
}

// Refund returns a charge's money.
func (c *Client) Refund(ctx context.Context, key, chargeID string) error {
	return c.call(ctx, c.guards.Refund, "/refunds", key, map[string]any{"charge_id": chargeID}, nil)
}

// call makes the call under g, and says payment.ErrNotSent when none of its
// attempts can have reached the provider. A definite answer (the
// provider did nothing, and said so) is the call's outcome even when a
// later attempt fails otherwise (the breaker, opened by that very
// answer, refuses the retry): the provider keeps that answer for the
// key, so nothing another attempt did can change it.
func (c *Client) call(ctx context.Context, g guard.Guard, path, key string, body, out any) error {
	reached := false
	var definite error
	err := g.Do(ctx, func(ctx context.Context) error {
		err := c.post(ctx, path, key, body, out)
		if !errors.Is(err, payment.ErrNotSent) {
			reached = true
		}
		if errors.Is(err, payment.ErrRefused) && definite == nil {
			definite = err
		}
		return err
	})
	switch {
	case err == nil:
		return nil
	case definite != nil:
		return definite
	case !reached && !errors.Is(err, payment.ErrNotSent):
		return fmt.Errorf("psp %s: %w: %w", path, payment.ErrNotSent, err)
	}
	return err
}

func (c *Client) post(ctx context.Context, path, key string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("psp %s: %w: %w", path, payment.ErrNotSent, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("psp %s: %w: %w", path, payment.ErrNotSent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := c.http.Do(req)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		// No connection, so no request: it cannot have been carried out.
		return fmt.Errorf("psp %s: %w: %w: %w", path, ErrTransient, payment.ErrNotSent, err)
	}
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
	_ = json.Unmarshal(raw, &e)
	switch s := resp.StatusCode; {
	case s >= 500 && e.Error.Code == "processing_error":
		// The provider processed the request and failed it: it keeps
		// this as the key's answer, and nothing was taken. Still a
		// failure the retries and the breaker see.
		return fmt.Errorf("psp %s: %w: %w: status %d processing_error", path, ErrTransient, payment.ErrRefused, s)
	case httpstatus.Transient(s):
		return fmt.Errorf("psp %s: %w: status %d %s", path, ErrTransient, s, e.Error.Code)
	case s == http.StatusPaymentRequired:
		return &payment.DeclinedError{Reason: e.Error.Code}
	case s >= 300:
		return fmt.Errorf("psp %s: %w: status %d %s", path, payment.ErrRefused, s, e.Error.Code)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			// The provider said yes, but what it took is unreadable:
			// unknown, to be asked again with the key.
			return fmt.Errorf("psp %s: %w: decode answer: %w", path, ErrTransient, err)
		}
	}
	return nil
}
