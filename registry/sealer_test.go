package registry_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudmux/cloudmux/registry"
)

func TestSealedCredentials(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key, err := registry.GenerateKeyFile(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := registry.GenerateKeyFile(filepath.Join(dir, "key")); err == nil {
		t.Fatal("GenerateKeyFile overwrote an existing key")
	}
	loaded, err := registry.LoadKeyFile(filepath.Join(dir, "key"))
	if err != nil || !bytes.Equal(loaded, key) {
		t.Fatalf("LoadKeyFile = %x, %v; want the generated key", loaded, err)
	}
	sealer, err := registry.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	store := registry.NewMemory()
	reg := registry.NewPeerRegistry(store).WithSealer(sealer)
	p, err := reg.Create(ctx, osPeer("sealed"), osCreds())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := store.Get(ctx, p.CredentialsRef)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Value, []byte("hunter2")) || bytes.Contains(raw.Value, []byte("svc")) {
		t.Fatalf("credentials stored readable: %q", raw.Value)
	}
	c, err := reg.Credentials(ctx, p)
	if err != nil || c.Password != "hunter2-very-secret" {
		t.Fatalf("Credentials through the sealer = %v, %v", c.Password != "", err)
	}

	tests := []struct {
		name string
		reg  *registry.PeerRegistry
	}{
		{"another key", registry.NewPeerRegistry(store).WithSealer(mustAESGCM(t, bytes.Repeat([]byte{7}, 32)))},
		{"no key", registry.NewPeerRegistry(store)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.reg.Credentials(ctx, p); !errors.Is(err, registry.ErrSealed) {
				t.Fatalf("Credentials = %v, want ErrSealed", err)
			}
		})
	}
	t.Run("sealed credentials do not open under another peer", func(t *testing.T) {
		other, err := reg.Create(ctx, osPeer("victim"), osCreds())
		if err != nil {
			t.Fatal(err)
		}
		// Someone with write access to the store copies p's sealed
		// credentials under another peer's key.
		if _, err := store.Put(ctx, other.CredentialsRef, raw.Value); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Credentials(ctx, other); !errors.Is(err, registry.ErrSealed) {
			t.Fatalf("moved credentials = %v, want ErrSealed", err)
		}
	})
	t.Run("plaintext from before sealing still reads", func(t *testing.T) {
		plain := registry.NewPeerRegistry(store)
		old, err := plain.Create(ctx, osPeer("older"), osCreds())
		if err != nil {
			t.Fatal(err)
		}
		if c, err := reg.Credentials(ctx, old); err != nil || c.Username != "svc" {
			t.Fatalf("sealed registry reading a plaintext record = %+v, %v", c.Username, err)
		}
	})
	t.Run("world-readable key refused", func(t *testing.T) {
		path := filepath.Join(dir, "key")
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := registry.LoadKeyFile(path); err == nil {
			t.Fatal("a world-readable key file was accepted")
		}
	})
}

func mustAESGCM(t *testing.T, key []byte) *registry.AESGCM {
	t.Helper()
	s, err := registry.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckKey(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	if err := registry.CheckKey(ctx, store, a); err != nil {
		t.Fatalf("first key: %v", err)
	}
	if err := registry.CheckKey(ctx, store, a); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	if err := registry.CheckKey(ctx, store, b); !errors.Is(err, registry.ErrWrongKey) {
		t.Fatalf("another key = %v, want ErrWrongKey", err)
	}
	kv, _ := store.Get(ctx, "cluster/credentials-key-check")
	if bytes.Contains(kv.Value, a) {
		t.Fatal("the check value holds the key")
	}
}
