// Package cardcrypt is client-side card encryption, as payment providers
// offer it (Adyen CSE, Braintree client-side encryption): the provider
// publishes a public key; whoever takes the card number seals it to that
// key at once, and from then on only an opaque token travels and is
// stored. Only the provider, holding the private key, can open it. No call
// to the provider is needed to take an order, so a provider outage cannot
// stop orders from being accepted (the charge fails later, and the saga
// compensates).
//
// The construction is the standard one, HPKE (RFC 9180, crypto/hpke) in
// base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, with an
// info string that binds a token to its purpose and to the key it was
// sealed to, and associated data that binds it to one payment (Binding:
// the order id and the amount), so a token read from Kafka, a dead-letter
// queue or a database cannot pay for any other order or amount. Keys are random (GenerateKey), never derived from a secret;
// a Keyring holds the provider's keys by id, so keys can be rotated: new
// tokens use the newest key, tokens sealed to older keys still open until
// those keys are retired.
//
//	token = "enc_v3." + key id + "." + base64url(HPKE encapsulated key || ciphertext)
package cardcrypt

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Scheme names the construction, as the provider publishes it.
const Scheme = "hpke-base-x25519-hkdfsha256-aes256gcm"

const prefix = "enc_v3."

// encLen is the size of DHKEM(X25519)'s encapsulated key, which leads the
// sealed bytes.
const encLen = 32

var (
	// ErrBadToken means a token that does not open: tampered with, sealed
	// to another key with the same id, sealed for another payment (order
	// or amount), or not a token at all.
	ErrBadToken = errors.New("cardcrypt: not a valid token")
	// ErrUnknownKey means a token sealed to a key this keyring does not
	// hold (never had it, or retired it).
	ErrUnknownKey = errors.New("cardcrypt: token sealed to an unknown key")
)

// info binds a token to what it carries and to the key id in its header,
// so a token cannot be replayed as something else or under another id.
func info(keyID string) []byte { return []byte("sagasuite/cardcrypt/v3 card number; key " + keyID) }

// Binding is the one payment a token may serve. Both sides build it from
// what they know of the payment: orders when it seals the card, the
// provider from the charge request.
type Binding struct {
	OrderID     string
	AmountCents int64
}

// aad is the binding as HPKE associated data.
func (b Binding) aad() []byte {
	return fmt.Appendf(nil, "order %q; amount_cents %d", b.OrderID, b.AmountCents)
}

func suite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.AES256GCM() }

// PublicKey is a provider's published key: its id and its X25519 key.
type PublicKey struct {
	ID  string
	Key *ecdh.PublicKey
}

// Fingerprint is the key's SHA-256, "sha256:<hex>": what a merchant
// configures to accept a key it fetches (orders' PSP_KEY_FINGERPRINTS),
// learnt from the provider out of band (psp logs it at start).
func (p PublicKey) Fingerprint() string {
	sum := sha256.Sum256(p.Key.Bytes())
	return "sha256:" + hex.EncodeToString(sum[:])
}

// String is the text form "<id>:<base64url key>" (PSP_PUBLIC_KEY).
func (p PublicKey) String() string {
	return p.ID + ":" + base64.RawURLEncoding.EncodeToString(p.Key.Bytes())
}

// ParsePublicKey parses PublicKey.String's output.
func ParsePublicKey(s string) (PublicKey, error) {
	id, enc, ok := strings.Cut(s, ":")
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if !ok || id == "" || err != nil {
		return PublicKey{}, errors.New("cardcrypt: public key: want <id>:<base64url X25519 key>")
	}
	k, err := ecdh.X25519().NewPublicKey(b)
	if err != nil {
		return PublicKey{}, fmt.Errorf("cardcrypt: public key: %w", err)
	}
	if id != keyID(k) {
		return PublicKey{}, fmt.Errorf("cardcrypt: public key: id %q is not the key's own (%s)", id, keyID(k))
	}
	return PublicKey{ID: id, Key: k}, nil
}

// keyID names a key by its public half, so the same key always has the
// same id and two keys never share one.
func keyID(k *ecdh.PublicKey) string {
	sum := sha256.Sum256(k.Bytes())
	return hex.EncodeToString(sum[:8])
}

// Seal encrypts card to the provider's public key, for the one payment b.
func Seal(to PublicKey, card string, b Binding) (string, error) {
	if b.OrderID == "" || b.AmountCents <= 0 {
		return "", errors.New("cardcrypt: seal: a token is bound to an order id and a positive amount")
	}
	pk, err := hpke.NewDHKEMPublicKey(to.Key)
	if err != nil {
		return "", fmt.Errorf("cardcrypt: %w", err)
	}
	kdf, aead := suite()
	enc, sender, err := hpke.NewSender(pk, kdf, aead, info(to.ID))
	if err != nil {
		return "", fmt.Errorf("cardcrypt: seal: %w", err)
	}
	ct, err := sender.Seal(b.aad(), []byte(card))
	if err != nil {
		return "", fmt.Errorf("cardcrypt: seal: %w", err)
	}
	return prefix + to.ID + "." + base64.RawURLEncoding.EncodeToString(append(enc, ct...)), nil
}

// Keyring is the provider's private keys by id; the newest is current
// (published, used for new tokens). Safe for concurrent use.
type Keyring struct {
	change  sync.Mutex // one Rotate or Retire at a time
	mu      sync.RWMutex
	keys    map[string]*ecdh.PrivateKey
	order   []string // oldest first; the last is current
	persist string   // file the keyring is saved to; "" keeps it in memory
}

// NewKeyring returns a keyring with one fresh key.
func NewKeyring() (*Keyring, error) {
	k := &Keyring{keys: map[string]*ecdh.PrivateKey{}}
	if _, err := k.Rotate(); err != nil { // in memory: nothing to save yet
		return nil, err
	}
	return k, nil
}

// Current is the public key to publish.
func (k *Keyring) Current() PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	priv := k.keys[k.order[len(k.order)-1]]
	return PublicKey{ID: k.order[len(k.order)-1], Key: priv.PublicKey()}
}

// IDs lists the keys held, oldest first.
func (k *Keyring) IDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return slices.Clone(k.order)
}

// Rotate adds a fresh key and makes it current; tokens sealed to the
// older keys still open. A keyring with a file saves the new key first
// and makes it current only once it is on disk: a key published but not
// saved would seal tokens that no restarted provider could open.
func (k *Keyring) Rotate() (PublicKey, error) {
	k.change.Lock()
	defer k.change.Unlock()
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return PublicKey{}, fmt.Errorf("cardcrypt: generate key: %w", err)
	}
	id := keyID(priv.PublicKey())
	k.mu.RLock()
	keys, order := maps.Clone(k.keys), append(slices.Clone(k.order), id)
	k.mu.RUnlock()
	keys[id] = priv
	if err := k.save(keys, order); err != nil {
		return PublicKey{}, err
	}
	k.mu.Lock()
	k.keys, k.order = keys, order
	k.mu.Unlock()
	return PublicKey{ID: id, Key: priv.PublicKey()}, nil
}

// Retire drops a key that is not current: tokens sealed to it no longer
// open. As with Rotate, the keyring changes once the change is saved.
func (k *Keyring) Retire(id string) error {
	k.change.Lock()
	defer k.change.Unlock()
	k.mu.RLock()
	i := slices.Index(k.order, id)
	keys, order := maps.Clone(k.keys), slices.Clone(k.order)
	k.mu.RUnlock()
	if i < 0 || i == len(order)-1 {
		return fmt.Errorf("cardcrypt: retire %s: not a key this keyring holds, or the current one", id)
	}
	delete(keys, id)
	order = slices.Delete(order, i, i+1)
	if err := k.save(keys, order); err != nil {
		return err
	}
	k.mu.Lock()
	k.keys, k.order = keys, order
	k.mu.Unlock()
	return nil
}

// Open decrypts a token with the key its header names, for the payment b:
// a token sealed for another order or amount does not open (ErrBadToken).
func (k *Keyring) Open(token string, b Binding) (string, error) {
	rest, ok := strings.CutPrefix(token, prefix)
	id, enc, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return "", ErrBadToken
	}
	k.mu.RLock()
	priv := k.keys[id]
	k.mu.RUnlock()
	if priv == nil {
		return "", ErrUnknownKey
	}
	sealed, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(sealed) <= encLen {
		return "", ErrBadToken
	}
	sk, err := hpke.NewDHKEMPrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("cardcrypt: %w", err)
	}
	kdf, aead := suite()
	recipient, err := hpke.NewRecipient(sealed[:encLen], sk, kdf, aead, info(id))
	if err != nil {
		return "", ErrBadToken
	}
	card, err := recipient.Open(b.aad(), sealed[encLen:])
	if err != nil {
		return "", ErrBadToken
	}
	return string(card), nil
}

// keyringFile is the keyring on disk: private keys, base64url, oldest first.
type keyringFile struct {
	Scheme string   `json:"scheme"`
	Keys   []string `json:"keys"`
}

// LoadOrCreateKeyring reads the keyring saved at path, or creates one with
// a fresh key and saves it there (mode 0600), so that a restarted provider,
// or another replica given the same file, opens the tokens sealed to it.
func LoadOrCreateKeyring(path string) (*Keyring, error) {
	raw, err := os.ReadFile(path) // #nosec G304 -- the operator's PSP_KEY_FILE
	if errors.Is(err, os.ErrNotExist) {
		k, err := NewKeyring()
		if err != nil {
			return nil, err
		}
		k.persist = path
		return k, k.save(k.keys, k.order)
	}
	if err != nil {
		return nil, fmt.Errorf("cardcrypt: read keyring: %w", err)
	}
	var f keyringFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Scheme != Scheme || len(f.Keys) == 0 {
		return nil, fmt.Errorf("cardcrypt: keyring %s: want {\"scheme\": %q, \"keys\": [...]}", path, Scheme)
	}
	k := &Keyring{keys: map[string]*ecdh.PrivateKey{}, persist: path}
	for _, enc := range f.Keys {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("cardcrypt: keyring %s: %w", path, err)
		}
		priv, err := ecdh.X25519().NewPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("cardcrypt: keyring %s: %w", path, err)
		}
		id := keyID(priv.PublicKey())
		k.keys[id] = priv
		k.order = append(k.order, id)
	}
	return k, nil
}

// save writes keys in order to the keyring's file, if it has one, so that
// a crash at any point leaves either the old file or the new one, whole
// and on disk: a temporary file written and synced, renamed over the old
// one, and the directory synced so the rename itself survives.
func (k *Keyring) save(keys map[string]*ecdh.PrivateKey, order []string) error {
	if k.persist == "" {
		return nil
	}
	f := keyringFile{Scheme: Scheme}
	for _, id := range order {
		f.Keys = append(f.Keys, base64.RawURLEncoding.EncodeToString(keys[id].Bytes()))
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := writeSynced(k.persist, b); err != nil {
		return fmt.Errorf("cardcrypt: save keyring: %w", err)
	}
	return nil
}

func writeSynced(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) // #nosec G304 -- next to the operator's PSP_KEY_FILE
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir) // #nosec G304 -- the keyring's own directory
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
