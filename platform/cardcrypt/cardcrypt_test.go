package cardcrypt_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/example/sagasuite/platform/cardcrypt"
)

const card = "4242424242424242"

// pay is the payment the tests seal for.
var pay = cardcrypt.Binding{OrderID: "0193-order", AmountCents: 4200}

func TestSealOpen(t *testing.T) {
	ring, err := cardcrypt.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cardcrypt.ParsePublicKey(ring.Current().String()) // as a merchant receives it
	if err != nil {
		t.Fatal(err)
	}
	a, err := cardcrypt.Seal(pub, card, pay)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := cardcrypt.Seal(pub, card, pay)
	if a == b || strings.Contains(a, "4242") {
		t.Fatalf("tokens must be opaque and randomised: %s %s", a, b)
	}
	if got, err := ring.Open(a, pay); err != nil || got != card {
		t.Fatalf("open: %q %v", got, err)
	}
}

// A tampered token, a wrong key and an unknown key id do not open.
func TestTokensThatMustNotOpen(t *testing.T) {
	ring, _ := cardcrypt.NewKeyring()
	other, _ := cardcrypt.NewKeyring()
	token, _ := cardcrypt.Seal(ring.Current(), card, pay)

	// Tampered: every byte of the ciphertext, flipped in turn.
	id, enc, _ := strings.Cut(strings.TrimPrefix(token, "enc_v3."), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(enc)
	for i := range raw {
		bad := append([]byte(nil), raw...)
		bad[i] ^= 0x01
		if _, err := ring.Open("enc_v3."+id+"."+base64.RawURLEncoding.EncodeToString(bad), pay); !errors.Is(err, cardcrypt.ErrBadToken) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	// Wrong key: sealed to another provider's key, presented under our id.
	foreign, _ := cardcrypt.Seal(cardcrypt.PublicKey{ID: ring.Current().ID, Key: other.Current().Key}, card, pay)
	if _, err := ring.Open(foreign, pay); !errors.Is(err, cardcrypt.ErrBadToken) {
		t.Errorf("a token sealed to another key under our id: %v", err)
	}
	// The id is bound: our token relabelled with another id of ours fails.
	rotated, _ := cardcrypt.NewKeyring()
	old := rotated.Current().ID
	tok, _ := cardcrypt.Seal(rotated.Current(), card, pay)
	next, _ := rotated.Rotate()
	if _, err := rotated.Open(strings.Replace(tok, old, next.ID, 1), pay); !errors.Is(err, cardcrypt.ErrBadToken) {
		t.Errorf("a token under another key's id: %v", err)
	}
	// Unknown key id.
	if _, err := other.Open(token, pay); !errors.Is(err, cardcrypt.ErrUnknownKey) {
		t.Errorf("a token for a key this keyring never had: %v", err)
	}
	for _, bad := range []string{"", "tok_x", "enc_v3.", "enc_v3." + id, "enc_v3." + id + ".!!", "enc_v1_" + strings.Repeat("A", 80)} {
		if _, err := ring.Open(bad, pay); err == nil {
			t.Errorf("opened %q", bad)
		}
	}
}

// Rotation: new tokens use the new key, old tokens still open until their
// key is retired; the keyring survives a restart through its file.
func TestRotationAndPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "psp-keys.json")
	ring, err := cardcrypt.LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file: %v %v", fi, err)
	}
	first := ring.Current()
	before, _ := cardcrypt.Seal(first, card, pay)
	second, err := ring.Rotate()
	if err != nil || second.ID == first.ID || ring.Current().ID != second.ID {
		t.Fatalf("rotate: %v %v", second, err)
	}
	after, _ := cardcrypt.Seal(ring.Current(), card, pay)

	restarted, err := cardcrypt.LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if restarted.Current().ID != second.ID || len(restarted.IDs()) != 2 {
		t.Fatalf("after restart: current %s, keys %v", restarted.Current().ID, restarted.IDs())
	}
	for _, tok := range []string{before, after} {
		if got, err := restarted.Open(tok, pay); err != nil || got != card {
			t.Errorf("open after restart: %q %v", got, err)
		}
	}
	if err := restarted.Retire(second.ID); err == nil {
		t.Error("retired the current key")
	}
	if err := restarted.Retire(first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Open(before, pay); !errors.Is(err, cardcrypt.ErrUnknownKey) {
		t.Errorf("a token of a retired key: %v", err)
	}
	again, _ := cardcrypt.LoadOrCreateKeyring(path)
	if len(again.IDs()) != 1 {
		t.Errorf("the retirement was not saved: %v", again.IDs())
	}
	if err := os.WriteFile(path, []byte(`{"scheme":"cardcrypt-v1","keys":["x"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cardcrypt.LoadOrCreateKeyring(path); err == nil {
		t.Error("loaded a keyring of another scheme")
	}
}

// A token is bound to its payment: read from Kafka or a dead-letter
// queue, it cannot pay for another order, nor for another amount of the
// same order.
func TestATokenPaysOnlyForItsOrderAndAmount(t *testing.T) {
	ring, err := cardcrypt.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	token, err := cardcrypt.Seal(ring.Current(), "4242424242424242", pay)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ring.Open(token, pay); err != nil || got != "4242424242424242" {
		t.Fatalf("its own payment: %q, %v", got, err)
	}
	for name, other := range map[string]cardcrypt.Binding{
		"another order":  {OrderID: "0193-other", AmountCents: pay.AmountCents},
		"another amount": {OrderID: pay.OrderID, AmountCents: pay.AmountCents + 1},
		"no payment":     {},
	} {
		if got, err := ring.Open(token, other); !errors.Is(err, cardcrypt.ErrBadToken) || got != "" {
			t.Errorf("%s: opened to %q (%v), want ErrBadToken", name, got, err)
		}
	}
	if _, err := cardcrypt.Seal(ring.Current(), "4242424242424242", cardcrypt.Binding{}); err == nil {
		t.Error("sealed a token bound to no payment")
	}
}

// A rotation that cannot be saved changes nothing: the old key stays
// current (and published), so no token is ever sealed to a key a
// restarted provider would not have. The same for a retirement.
func TestARotationThatCannotBeSavedKeepsTheOldKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	ring, err := cardcrypt.LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	old := ring.Current()
	saved, _ := os.ReadFile(path)
	// The temporary file cannot be created (a directory is in its
	// place): as a full or read-only disk would, even for root.
	if err := os.Mkdir(path+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Rotate(); err == nil {
		t.Fatal("the rotation was saved")
	}
	if ring.Current().ID != old.ID || len(ring.IDs()) != 1 {
		t.Fatalf("current %s (keys %v) after a failed rotation, want %s alone", ring.Current().ID, ring.IDs(), old.ID)
	}
	if now, _ := os.ReadFile(path); string(now) != string(saved) {
		t.Fatal("the keyring file changed")
	}
	restarted, err := cardcrypt.LoadOrCreateKeyring(path)
	if err != nil || restarted.Current().ID != old.ID {
		t.Fatalf("after a restart: %v, %v", restarted.IDs(), err)
	}

	// Saved once it can be: rotated, then retiring the old key fails to
	// save and keeps it.
	if err := os.Remove(path + ".tmp"); err != nil {
		t.Fatal(err)
	}
	next, err := ring.Rotate()
	if err != nil || ring.Current().ID != next.ID {
		t.Fatalf("rotate: %v", err)
	}
	if err := os.Mkdir(path+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := ring.Retire(old.ID); err == nil || !slices.Contains(ring.IDs(), old.ID) {
		t.Fatalf("retire without saving: %v, keys %v", err, ring.IDs())
	}
}
