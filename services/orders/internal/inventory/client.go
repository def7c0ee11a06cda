// Package inventory asks the inventory service for prices: the synchronous
// quote that lets POST /orders reject unknown SKUs at once and fix the
// price the customer pays. The call is a read, so it is retried; it runs
// behind a bulkhead and a circuit breaker so that a slow or dead inventory
// makes POST /orders fail fast with 503 instead of piling up.
package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/guard"
	"github.com/example/sagasuite/platform/httpstatus"
	"github.com/example/sagasuite/services/orders/internal/app"
)

// ErrUnavailable means inventory could not answer (down, slow, 5xx).
var ErrUnavailable = errors.New("inventory unavailable")

// Picker chooses the inventory instance for a call: a discovery resolver,
// or a fixed address.
type Picker interface {
	Pick() (discovery.Instance, error)
	Instances() []discovery.Instance
}

// Client calls inventory instances.
type Client struct {
	picker Picker
	http   *http.Client
	guard  guard.Guard
}

// New returns a client whose calls go through rt (telemetry.Transport) and
// run under g; g.Timeout and the
// caller's deadline bound each attempt.
func New(picker Picker, g guard.Guard, rt http.RoundTripper) *Client {
	return &Client{picker: picker, guard: g, http: &http.Client{Transport: rt}}
}

// ErrRefused means inventory refused the request (a 4xx): the request was
// at fault, not inventory. It is neither retried nor counted against the
// breaker, so no client's bad input can open it for everyone.
var ErrRefused = fmt.Errorf("inventory refused the request: %w", app.ErrQuoteRefused)

// Transient reports whether err is worth retrying (and counting against
// the breaker): inventory was unreachable, slow or failing.
func Transient(err error) bool { return errors.Is(err, ErrUnavailable) }

type product struct {
	SKU        string `json:"sku"`
	PriceCents int64  `json:"price_cents"`
}

// Prices returns the unit price of each known SKU; unknown SKUs are absent.
func (c *Client) Prices(ctx context.Context, skus []string) (map[string]int64, error) {
	var prices map[string]int64
	err := c.guard.Do(ctx, func(ctx context.Context) error {
		var err error
		prices, err = c.prices(ctx, skus)
		return err
	})
	return prices, err
}

// prices asks one instance; an instance that refuses the connection (it
// died and has not left discovery yet) is skipped for the next at once:
// the request never reached it, so this costs no retry budget.
func (c *Client) prices(ctx context.Context, skus []string) (map[string]int64, error) {
	var err error
	for range max(1, len(c.picker.Instances())) {
		in, perr := c.picker.Pick()
		if perr != nil {
			// Nothing registered says nothing about inventory's health:
			// not counted against the breaker, not retried.
			return nil, fmt.Errorf("quote: %w", perr)
		}
		var prices map[string]int64
		prices, err = c.ask(ctx, in.Addr, skus)
		var op *net.OpError
		if !(errors.As(err, &op) && op.Op == "dial") {
			return prices, err
		}
	}
	return nil, err
}

func (c *Client) ask(ctx context.Context, base string, skus []string) (map[string]int64, error) {
	q := url.Values{"sku": skus}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/products?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("quote: %w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if httpstatus.Transient(resp.StatusCode) {
			return nil, fmt.Errorf("quote: %w: status %d", ErrUnavailable, resp.StatusCode)
		}
		return nil, fmt.Errorf("quote: %w: status %d", ErrRefused, resp.StatusCode)
	}
	var ps []product
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ps); err != nil {
		return nil, fmt.Errorf("quote: %w: decode: %w", ErrUnavailable, err)
	}
	prices := make(map[string]int64, len(ps))
	for _, p := range ps {
		prices[p.SKU] = p.PriceCents
	}
	return prices, nil
}
