package cardseal_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/cardcrypt"
	"github.com/example/sagasuite/services/orders/internal/cardseal"
)

// keys is the provider's keyring in these tests.
var keys, _ = cardcrypt.NewKeyring()

// provider publishes a key the way the psp simulator does, and can be down.
func provider(t *testing.T, down *atomic.Bool, fetches *atomic.Int64) (*httptest.Server, string) {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if down.Load() || r.URL.Path != "/card-encryption-key" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"scheme":"` + cardcrypt.Scheme + `","public_key":"` + keys.Current().String() + `"}`))
	}))
	t.Cleanup(ts.Close)
	return ts, keys.Current().String()
}

func TestSealsWithTheFetchedKeyOnce(t *testing.T) {
	var down atomic.Bool
	var fetches atomic.Int64
	ts, _ := provider(t, &down, &fetches)
	c, err := cardseal.New(ts.URL, time.Second, cardseal.Pinning{}, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Tokenize(context.Background(), "4000000000000002", "o-1", 500)
	if err != nil || strings.Contains(tok, "4000000000000002") {
		t.Fatalf("%q %v", tok, err)
	}
	if card, err := keys.Open(tok, cardcrypt.Binding{OrderID: "o-1", AmountCents: 500}); err != nil || card != "4000000000000002" {
		t.Fatalf("the provider cannot open the token: %q %v", card, err)
	}
	down.Store(true) // the key is cached: a provider outage does not stop orders
	for range 5 {
		if _, err := c.Tokenize(context.Background(), "4242424242424242", "o-1", 500); err != nil {
			t.Fatalf("with the key cached: %v", err)
		}
	}
	if fetches.Load() != 1 {
		t.Fatalf("%d key fetches, want 1", fetches.Load())
	}
}

func TestUnavailableUntilWarmGetsTheKey(t *testing.T) {
	var down atomic.Bool
	var fetches atomic.Int64
	down.Store(true)
	ts, _ := provider(t, &down, &fetches)
	c, _ := cardseal.New(ts.URL, time.Second, cardseal.Pinning{}, http.DefaultTransport)
	if _, err := c.Tokenize(context.Background(), "4242424242424242", "o-1", 500); !errors.Is(err, cardseal.ErrUnavailable) {
		t.Fatalf("provider down, no key: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	warmed := make(chan error, 1)
	go func() { warmed <- c.Warm(ctx) }()
	time.Sleep(150 * time.Millisecond)
	down.Store(false)
	if err := <-warmed; err != nil || ctx.Err() != nil {
		t.Fatalf("warm: %v (ctx %v)", err, ctx.Err())
	}
	if _, err := c.Tokenize(context.Background(), "4242424242424242", "o-1", 500); err != nil {
		t.Fatalf("after warm-up: %v", err)
	}
}

func TestPinnedKeyNeedsNoProvider(t *testing.T) {
	var down atomic.Bool
	var fetches atomic.Int64
	down.Store(true)
	ts, pub := provider(t, &down, &fetches)
	c, err := cardseal.New(ts.URL, time.Second, cardseal.Pinning{Key: pub}, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tokenize(context.Background(), "4242424242424242", "o-1", 500); err != nil || fetches.Load() != 0 {
		t.Fatalf("pinned: %v after %d fetches", err, fetches.Load())
	}
	if _, err := cardseal.New(ts.URL, time.Second, cardseal.Pinning{Key: "not-a-key"}, http.DefaultTransport); err == nil {
		t.Fatal("a bad pinned key was accepted")
	}
}

// A key the provider rotates in is picked up at the next refresh; while
// the provider is down the cached key keeps working.
func TestPicksUpARotatedKey(t *testing.T) {
	var down atomic.Bool
	var fetches atomic.Int64
	ts, _ := provider(t, &down, &fetches)
	c, _ := cardseal.New(ts.URL, time.Second, cardseal.Pinning{}, http.DefaultTransport)
	c.Refresh = time.Millisecond
	first, err := c.Tokenize(context.Background(), "4242424242424242", "o-1", 500)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	second, err := c.Tokenize(context.Background(), "4242424242424242", "o-1", 500)
	if err != nil {
		t.Fatal(err)
	}
	idOf := func(tok string) string { return strings.Split(tok, ".")[1] }
	if idOf(second) != keys.Current().ID || idOf(first) == idOf(second) {
		t.Fatalf("sealed to %s then %s; the provider's current key is %s", idOf(first), idOf(second), keys.Current().ID)
	}
	down.Store(true)
	time.Sleep(5 * time.Millisecond)
	if _, err := c.Tokenize(context.Background(), "4242424242424242", "o-1", 500); err != nil {
		t.Fatalf("provider down after a refresh interval: %v", err)
	}
	for _, tok := range []string{first, second} {
		if card, err := keys.Open(tok, cardcrypt.Binding{OrderID: "o-1", AmountCents: 500}); err != nil || card != "4242424242424242" {
			t.Errorf("the provider cannot open %s: %v", idOf(tok), err)
		}
	}
}

// With fingerprints pinned, a key from whoever answers for the
// provider's URL is refused unless it is one of them: no card is sealed
// to an impostor's key.
func TestOnlyAPinnedFingerprintIsAccepted(t *testing.T) {
	var down atomic.Bool
	var fetches atomic.Int64
	ts, _ := provider(t, &down, &fetches)
	good, err := cardseal.New(ts.URL, time.Second, cardseal.Pinning{Fingerprints: []string{keys.Current().Fingerprint()}}, http.DefaultTransport)
	if err != nil || !good.Pinned() {
		t.Fatalf("new: %v, pinned %v", err, good.Pinned())
	}
	if _, err := good.Tokenize(context.Background(), "4242424242424242", "o-1", 500); err != nil {
		t.Fatalf("the pinned key: %v", err)
	}
	impostor, _ := cardcrypt.NewKeyring()
	c, _ := cardseal.New(ts.URL, time.Second, cardseal.Pinning{Fingerprints: []string{impostor.Current().Fingerprint()}}, http.DefaultTransport)
	if tok, err := c.Tokenize(context.Background(), "4242424242424242", "o-1", 500); !errors.Is(err, cardseal.ErrKeyNotPinned) || tok != "" {
		t.Fatalf("a key not pinned: token %q, %v; want ErrKeyNotPinned", tok, err)
	}
	if _, err := cardseal.New(ts.URL, time.Second, cardseal.Pinning{Fingerprints: []string{"md5:abc"}}, http.DefaultTransport); err == nil {
		t.Fatal("a malformed fingerprint was accepted")
	}
	if unpinned, _ := cardseal.New(ts.URL, time.Second, cardseal.Pinning{}, http.DefaultTransport); unpinned.Pinned() {
		t.Fatal("no pin reported as pinned")
	}
}
