package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// A key's secret is the string clients send as "Authorization: Bearer
// <secret>": "spool_" + the key's id + "_" + 43 characters of base64url
// (256 random bits). The id in it lets the server find the key without
// scanning; only a SHA-256 hash of the whole secret is stored (a 256-bit
// random secret needs no slow hash).
const (
	secretPrefix = "spool_"
	// idLen is the length of a key id: 16 hex digits (64 random bits).
	idLen     = 16
	secretLen = len(secretPrefix) + idLen + 1 + 43
)

// NewKey returns a fresh key id and its secret.
func NewKey() (id, secret string, err error) {
	var b [8 + 32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("auth: drawing a key: %w", err)
	}
	id = hex.EncodeToString(b[:8])
	return id, secretPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[8:]), nil
}

// ParseSecret returns the key id a secret names, or false if the string
// does not have a secret's shape.
func ParseSecret(secret string) (id string, ok bool) {
	if len(secret) != secretLen || !strings.HasPrefix(secret, secretPrefix) || secret[len(secretPrefix)+idLen] != '_' {
		return "", false
	}
	id = secret[len(secretPrefix) : len(secretPrefix)+idLen]
	if !ValidID(id) {
		return "", false
	}
	return id, true
}

// ValidID reports whether s has the shape of a key id.
func ValidID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// HashSecret is the stored form of a secret.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CheckSecret reports, in constant time, whether secret hashes to hash.
func CheckSecret(secret string, hash []byte) bool {
	h := sha256.Sum256([]byte(secret))
	return len(hash) == len(h) && subtle.ConstantTimeCompare(h[:], hash) == 1
}

// Sealer encrypts secrets for the protocols that need the secret itself
// (the SQS API's SigV4 signatures), with AES-256-GCM under a server-side
// key. Without a Sealer, keys are stored as hashes only and SigV4 cannot
// check them.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer makes a Sealer from a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("auth: the secret encryption key must be 32 bytes (64 hex digits), got %d bytes", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// ParseSealerKey decodes an encryption key written as 64 hex digits
// (surrounding white space ignored), as `openssl rand -hex 32` prints it.
func ParseSealerKey(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return nil, errors.New("auth: the secret encryption key must be 64 hex digits (openssl rand -hex 32)")
	}
	return b, nil
}

// LoadSealer reads the encryption key from a file (path) or from a value
// (hexKey); both empty means no Sealer (nil, nil).
func LoadSealer(path, hexKey string) (*Sealer, error) {
	switch {
	case path != "" && hexKey != "":
		return nil, errors.New("auth: give the secret encryption key as a file or a value, not both")
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("auth: reading the secret encryption key: %w", err)
		}
		hexKey = string(b)
	case hexKey == "":
		return nil, nil
	}
	key, err := ParseSealerKey(hexKey)
	if err != nil {
		return nil, err
	}
	return NewSealer(key)
}

// Seal encrypts secret, bound to the key id (additional data), as
// nonce || ciphertext.
func (s *Sealer) Seal(id, secret string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(secret)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("auth: drawing a nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, []byte(secret), []byte(id)), nil
}

// Open decrypts what Seal returned for the same id.
func (s *Sealer) Open(id string, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("auth: sealed secret too short")
	}
	b, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return "", errors.New("auth: the sealed secret does not open with this encryption key")
	}
	return string(b), nil
}
