package psp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/cardcrypt"
	"github.com/example/sagasuite/services/orders/internal/psp"
)

// provider publishes a key the way the psp simulator does, and can be down.
func provider(t *testing.T, down *atomic.Bool, fetches *atomic.Int64) (*httptest.Server, string) {
	t.Helper()
	key, _ := cardcrypt.KeyFromSecret("s")
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if down.Load() || r.URL.Path != "/card-encryption-key" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"scheme":"cardcrypt-v1","public_key":"` + cardcrypt.EncodePublic(key.PublicKey()) + `"}`))
	}))
	t.Cleanup(ts.Close)
	return ts, cardcrypt.EncodePublic(key.PublicKey())
}

func TestSealsWithTheFetchedKeyOnce(t *testing.T) {
	var down atomic.Bool
	var fetches atomic.Int64
	ts, _ := provider(t, &down, &fetches)
	c, err := psp.New(ts.URL, time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, last4, err := c.Tokenize(context.Background(), "4000000000000002")
	if err != nil || last4 != "0002" {
		t.Fatalf("%q %q %v", tok, last4, err)
	}
	key, _ := cardcrypt.KeyFromSecret("s")
	if card, err := cardcrypt.Open(key, tok); err != nil || card != "4000000000000002" {
		t.Fatalf("the provider cannot open the token: %q %v", card, err)
	}
	down.Store(true) // the key is cached: a provider outage does not stop orders
	for range 5 {
		if _, _, err := c.Tokenize(context.Background(), "4242424242424242"); err != nil {
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
	c, _ := psp.New(ts.URL, time.Second, "")
	if _, _, err := c.Tokenize(context.Background(), "4242424242424242"); !errors.Is(err, psp.ErrUnavailable) {
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
	if _, _, err := c.Tokenize(context.Background(), "4242424242424242"); err != nil {
		t.Fatalf("after warm-up: %v", err)
	}
}

func TestPinnedKeyNeedsNoProvider(t *testing.T) {
	var down atomic.Bool
	var fetches atomic.Int64
	down.Store(true)
	ts, pub := provider(t, &down, &fetches)
	c, err := psp.New(ts.URL, time.Second, pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Tokenize(context.Background(), "4242424242424242"); err != nil || fetches.Load() != 0 {
		t.Fatalf("pinned: %v after %d fetches", err, fetches.Load())
	}
	if _, err := psp.New(ts.URL, time.Second, "not-a-key"); err == nil {
		t.Fatal("a bad pinned key was accepted")
	}
}
