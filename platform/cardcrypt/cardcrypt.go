// Package cardcrypt is client-side card encryption, as payment providers
// offer it (Adyen CSE, Braintree client-side encryption): the provider
// publishes a public key; whoever takes the card number seals it to that
// key at once, and from then on only an opaque token travels and is
// stored. Only the provider, holding the private key, can open it. No call
// to the provider is needed to take an order, so a provider outage cannot
// stop orders from being accepted (the charge fails later, and the saga
// compensates).
//
// Scheme (version 1): an ephemeral X25519 key agreement with the
// provider's key, SHA-256 over the shared secret and both public keys as
// the AES-256-GCM key; token = "enc_v1_" + base64url(ephemeral public key
// || nonce || ciphertext).
package cardcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

const prefix = "enc_v1_"

// ErrBadToken means a token this key did not seal, or not a token at all.
var ErrBadToken = errors.New("cardcrypt: not a token for this key")

// KeyFromSecret derives the provider's key pair from a secret, so that a
// restarted provider (or a replica) opens the tokens it published a key for.
func KeyFromSecret(secret string) (*ecdh.PrivateKey, error) {
	if secret == "" {
		return nil, errors.New("cardcrypt: secret is required")
	}
	seed := sha256.Sum256([]byte("cardcrypt/v1:" + secret))
	return ecdh.X25519().NewPrivateKey(seed[:])
}

// EncodePublic and DecodePublic move a public key as text.
func EncodePublic(k *ecdh.PublicKey) string { return base64.RawURLEncoding.EncodeToString(k.Bytes()) }

// DecodePublic parses EncodePublic's output.
func DecodePublic(s string) (*ecdh.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("cardcrypt: public key: %w", err)
	}
	return ecdh.X25519().NewPublicKey(b)
}

// Seal encrypts card to the provider's public key.
func Seal(provider *ecdh.PublicKey, card string) (string, error) {
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	aead, err := aeadFor(eph, provider, eph.PublicKey())
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := append(append(eph.PublicKey().Bytes(), nonce...), aead.Seal(nil, nonce, []byte(card), eph.PublicKey().Bytes())...)
	return prefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a token with the provider's private key.
func Open(key *ecdh.PrivateKey, token string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, prefix))
	if err != nil || !strings.HasPrefix(token, prefix) || len(raw) < 32+12+16 {
		return "", ErrBadToken
	}
	eph, err := ecdh.X25519().NewPublicKey(raw[:32])
	if err != nil {
		return "", ErrBadToken
	}
	aead, err := aeadFor(key, eph, eph)
	if err != nil {
		return "", ErrBadToken
	}
	card, err := aead.Open(nil, raw[32:32+aead.NonceSize()], raw[32+aead.NonceSize():], raw[:32])
	if err != nil {
		return "", ErrBadToken
	}
	return string(card), nil
}

// aeadFor derives the AES-GCM key from the agreement of priv and peer;
// ephemeral is the sender's public key, bound into the key derivation.
func aeadFor(priv *ecdh.PrivateKey, peer, ephemeral *ecdh.PublicKey) (cipher.AEAD, error) {
	shared, err := priv.ECDH(peer)
	if err != nil {
		return nil, err
	}
	provider := peer
	if peer.Equal(ephemeral) {
		provider = priv.PublicKey()
	}
	h := sha256.New()
	h.Write(shared)
	h.Write(ephemeral.Bytes())
	h.Write(provider.Bytes())
	block, err := aes.NewCipher(h.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
