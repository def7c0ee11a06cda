// Package cardseal seals card numbers to the payment provider's public key
// before anything is stored or sent (client-side encryption, see
// platform/cardcrypt): from here on only the sealed token and the last
// four digits travel. The key is fetched and cached, so taking an order
// does not call the provider, and a provider outage does not stop orders
// from being accepted. The cached key is refetched after KeyRefresh, so a
// key the provider rotates in is picked up (the provider keeps opening
// tokens sealed to its older keys); a failed refetch keeps the cached key.
package cardseal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/example/sagasuite/platform/cardcrypt"
)

// ErrUnavailable means the provider's key could not be had.
var ErrUnavailable = errors.New("payment provider unavailable")

// Client seals cards for one provider base URL.
type Client struct {
	// Refresh is how long a fetched key is used before it is fetched
	// again; New sets KeyRefresh.
	Refresh time.Duration

	base string
	http *http.Client

	mu      sync.Mutex
	key     *cardcrypt.PublicKey
	fetched time.Time // zero for a pinned key: never refetched
	// accepted are the fingerprints a fetched key must have; empty
	// accepts any key the provider's URL answers with.
	accepted map[string]bool
}

// ErrKeyNotPinned means the provider answered with a key whose
// fingerprint is not one of Pinning.Fingerprints: whoever answered for the
// provider's URL is not trusted with card numbers.
var ErrKeyNotPinned = errors.New("card-encryption key refused: its fingerprint is not pinned")

// Pinning is how the provider's key is authenticated. The key fetched
// over the network is only as trustworthy as the network: with neither
// field set, whoever can answer for the provider's URL reads every card
// sealed afterwards.
type Pinning struct {
	// Key is the provider's key itself (PSP_PUBLIC_KEY, "<id>:<base64url>"),
	// used as is and never fetched: rotation then needs a new setting.
	Key string
	// Fingerprints are the keys accepted from a fetch
	// (PSP_KEY_FINGERPRINTS, "sha256:<hex>", comma-separated): list the
	// next key's before the provider rotates to it.
	Fingerprints []string
}

// KeyRefresh is the default Client.Refresh.
const KeyRefresh = 10 * time.Minute

// New returns a client whose key fetch times out after timeout, and
// which accepts only the keys pin allows.
func New(baseURL string, timeout time.Duration, pin Pinning, rt http.RoundTripper) (*Client, error) {
	c := &Client{Refresh: KeyRefresh, base: baseURL, http: &http.Client{Timeout: timeout, Transport: rt}, accepted: map[string]bool{}}
	for _, f := range pin.Fingerprints {
		if !fingerprint.MatchString(f) {
			return nil, fmt.Errorf("psp key fingerprint %q: want sha256:<64 hex digits>", f)
		}
		c.accepted[f] = true
	}
	if pin.Key != "" {
		key, err := cardcrypt.ParsePublicKey(pin.Key)
		if err != nil {
			return nil, fmt.Errorf("pinned psp key: %w", err)
		}
		c.key = &key
	}
	return c, nil
}

var fingerprint = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Pinned reports whether the provider's key is authenticated (a pinned
// key or fingerprints) rather than taken from whoever answers.
func (c *Client) Pinned() bool { return c.key != nil && c.fetched.IsZero() || len(c.accepted) > 0 }

// Warm fetches the key at start, retrying until it has it or ctx ends, so
// that a provider outage after start-up never stops orders.
func (c *Client) Warm(ctx context.Context) error {
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		if _, err := c.publicKey(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Tokenize returns card sealed to the provider's key, good only for the
// payment of amountCents for orderID (cardcrypt.Binding).
func (c *Client) Tokenize(ctx context.Context, card, orderID string, amountCents int64) (string, error) {
	key, err := c.publicKey(ctx)
	if err != nil {
		return "", err
	}
	token, err := cardcrypt.Seal(key, card, cardcrypt.Binding{OrderID: orderID, AmountCents: amountCents})
	if err != nil {
		return "", fmt.Errorf("seal card: %w", err)
	}
	return token, nil
}

func (c *Client) publicKey(ctx context.Context) (cardcrypt.PublicKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != nil && (c.fetched.IsZero() || time.Since(c.fetched) < c.Refresh) {
		return *c.key, nil
	}
	key, err := c.fetch(ctx)
	switch {
	case err == nil:
		c.key, c.fetched = &key, time.Now()
		return key, nil
	case c.key != nil: // the provider is down: the key it published still works
		c.fetched = time.Now()
		return *c.key, nil
	}
	return cardcrypt.PublicKey{}, err
}

func (c *Client) fetch(ctx context.Context) (cardcrypt.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/card-encryption-key", nil)
	if err != nil {
		return cardcrypt.PublicKey{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return cardcrypt.PublicKey{}, fmt.Errorf("fetch card-encryption key: %w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	var k struct {
		Scheme    string `json:"scheme"`
		PublicKey string `json:"public_key"`
	}
	if resp.StatusCode != http.StatusOK {
		return cardcrypt.PublicKey{}, fmt.Errorf("fetch card-encryption key: %w: status %d", ErrUnavailable, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&k); err != nil || k.Scheme != cardcrypt.Scheme {
		return cardcrypt.PublicKey{}, fmt.Errorf("fetch card-encryption key: %w: unexpected answer (scheme %q)", ErrUnavailable, k.Scheme)
	}
	key, err := cardcrypt.ParsePublicKey(k.PublicKey)
	if err != nil {
		return cardcrypt.PublicKey{}, fmt.Errorf("fetch card-encryption key: %w: %w", ErrUnavailable, err)
	}
	if len(c.accepted) > 0 && !c.accepted[key.Fingerprint()] {
		return cardcrypt.PublicKey{}, fmt.Errorf("fetch card-encryption key %s (%s): %w: %w", key.ID, key.Fingerprint(), ErrUnavailable, ErrKeyNotPinned)
	}
	return key, nil
}
