package registry

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Sealer encrypts secrets before they reach the store and decrypts them on
// the way back, so reading Consul's KV (a snapshot, a backup, an ACL that
// is too broad) does not yield peer credentials.
//
// The binding (additional authenticated data) ties a sealed value to where
// it belongs, e.g. its key: a value moved elsewhere by someone with write
// access to the store does not open.
type Sealer interface {
	Seal(plaintext, binding []byte) ([]byte, error)
	Open(sealed, binding []byte) ([]byte, error)
}

// ErrSealed: a stored secret cannot be opened (wrong key, or a record that
// was tampered with).
var ErrSealed = errors.New("registry: cannot open sealed secret")

// sealedPrefix marks sealed values, so a plaintext value written before
// encryption was enabled still reads, and is sealed on its next write.
var sealedPrefix = []byte("cmxsealed:v1:")

// AESGCM seals with AES-256-GCM under one key, which every broker replica of
// an installation shares.
type AESGCM struct{ aead cipher.AEAD }

var _ Sealer = (*AESGCM)(nil)

// NewAESGCM takes a 32-byte key.
func NewAESGCM(key []byte) (*AESGCM, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("credentials key: want 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &AESGCM{aead: aead}, nil
}

// LoadKeyFile reads a key file: 64 hex characters (as GenerateKeyFile
// writes), surrounding whitespace ignored. Files readable by others are
// refused.
func LoadKeyFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("credentials key %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("credentials key %s: want 64 hex characters (32 bytes)", path)
	}
	return key, nil
}

// GenerateKeyFile writes a new random key to path (mode 0600), refusing to
// overwrite an existing file.
func GenerateKeyFile(path string) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// Seal implements Sealer: prefix, random 96-bit nonce, ciphertext.
func (s *AESGCM) Seal(plaintext, binding []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(bytes.Clone(sealedPrefix), nonce...)
	return s.aead.Seal(out, nonce, plaintext, aad(binding)), nil
}

func aad(binding []byte) []byte { return append(bytes.Clone(sealedPrefix), binding...) }

// Open implements Sealer. A value without the sealed prefix is returned as
// is (written before sealing was enabled).
func (s *AESGCM) Open(sealed, binding []byte) ([]byte, error) {
	body, ok := bytes.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return sealed, nil
	}
	n := s.aead.NonceSize()
	if len(body) < n {
		return nil, fmt.Errorf("%w: too short", ErrSealed)
	}
	plain, err := s.aead.Open(nil, body[:n], body[n:], aad(binding))
	if err != nil {
		return nil, fmt.Errorf("%w: %v (is this broker using the installation's credentials key?)", ErrSealed, err)
	}
	return plain, nil
}

// keyCheckKey holds an HMAC of a fixed message under the installation's
// credentials key: proof of which key the installation uses, revealing
// nothing of it.
const keyCheckKey = "cluster/credentials-key-check"

// ErrWrongKey: a broker's credentials key is not the installation's.
var ErrWrongKey = errors.New("registry: not the installation's credentials key")

// CheckKey records key's check value when the installation has none yet,
// and otherwise refuses a key whose check value differs.
func CheckKey(ctx context.Context, store Store, key []byte) error {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("cloudmux credentials key check v1"))
	sum := hex.EncodeToString(mac.Sum(nil))
	kv, err := store.Get(ctx, keyCheckKey)
	if errors.Is(err, ErrNotFound) {
		if _, err := store.CAS(ctx, keyCheckKey, []byte(sum), 0); err == nil {
			return nil
		} else if !errors.Is(err, ErrConflict) {
			return err
		}
		kv, err = store.Get(ctx, keyCheckKey) // another replica recorded one first
	}
	if err != nil {
		return err
	}
	if !hmac.Equal(kv.Value, []byte(sum)) {
		return fmt.Errorf("%w: copy the key file of the replica that created it (credentials sealed with it would be unreadable here)", ErrWrongKey)
	}
	return nil
}

// plainSealer stores secrets as they are: a broker configured without a key.
type plainSealer struct{}

func (plainSealer) Seal(p, _ []byte) ([]byte, error) { return p, nil }
func (plainSealer) Open(p, _ []byte) ([]byte, error) {
	if bytes.HasPrefix(p, sealedPrefix) {
		return nil, fmt.Errorf("%w: the secret is sealed and this broker has no credentials key", ErrSealed)
	}
	return p, nil
}
