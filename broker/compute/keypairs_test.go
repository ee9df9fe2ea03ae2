package compute_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// TestKeypairsAcrossReplicas: two brokers' keypair stores over one store,
// each served from memory. The one that made a keypair lists it at once;
// the other finds it by name at once (a boot naming it must not fail
// because its watch has not delivered it yet).
func TestKeypairsAcrossReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := registry.NewMemory()
	a, b := compute.NewKeypairStore(store), compute.NewKeypairStore(store)
	for _, s := range []*compute.KeypairStore{a, b} {
		go func() { _ = s.Run(ctx) }()
		if err := s.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Create(ctx, "p1", "u1", peers.KeypairSpec{Name: "k1"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		read    func() error
		wantErr error
	}{
		{"the maker lists it", func() error {
			kps, err := a.List(ctx, "u1")
			if err == nil && (len(kps) != 1 || kps[0].Name != "k1") {
				t.Fatalf("List = %+v", kps)
			}
			return err
		}, nil},
		{"the other finds it by name", func() error { _, err := b.Get(ctx, "u1", "k1"); return err }, nil},
		{"another user does not", func() error { _, err := b.Get(ctx, "u2", "k1"); return err }, peers.ErrNotFound},
		{"the other refuses a second k1", func() error {
			_, err := b.Create(ctx, "p1", "u1", peers.KeypairSpec{Name: "k1"})
			return err
		}, peers.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.read(); !errors.Is(err, tc.wantErr) && (err != nil || tc.wantErr != nil) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
	if err := b.Delete(ctx, "p1", "u1", "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "u1", "k1"); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("the deleter still finds it: %v", err)
	}
}
