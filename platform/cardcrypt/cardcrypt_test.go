package cardcrypt_test

import (
	"strings"
	"testing"

	"github.com/example/sagasuite/platform/cardcrypt"
)

func TestSealOpen(t *testing.T) {
	key, err := cardcrypt.KeyFromSecret("s")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cardcrypt.DecodePublic(cardcrypt.EncodePublic(key.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cardcrypt.Seal(pub, "4242424242424242")
	b, _ := cardcrypt.Seal(pub, "4242424242424242")
	if a == b || strings.Contains(a, "4242") {
		t.Fatalf("tokens must be opaque and randomised: %s %s", a, b)
	}
	again, _ := cardcrypt.KeyFromSecret("s") // a restarted provider
	if card, err := cardcrypt.Open(again, a); err != nil || card != "4242424242424242" {
		t.Fatalf("open: %q %v", card, err)
	}
	other, _ := cardcrypt.KeyFromSecret("other")
	if _, err := cardcrypt.Open(other, a); err == nil {
		t.Fatal("another key opened the token")
	}
	tampered := a[:len(a)-2] + "AA"
	for _, bad := range []string{tampered, "tok_x", "enc_v1_", "", "enc_v1_" + strings.Repeat("A", 80)} {
		if _, err := cardcrypt.Open(key, bad); err == nil {
			t.Fatalf("opened %q", bad)
		}
	}
}
