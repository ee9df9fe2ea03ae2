package peertest

import (
	"slices"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

func (s *suite) testKeypairs(t *testing.T) {
	ctx := t.Context()
	spec := peers.KeypairSpec{Name: s.name("key"), Project: s.fx.Project, PublicKey: sshPublicKey()}
	kp, err := s.c.CreateKeypair(ctx, spec)
	if err != nil {
		t.Fatalf("CreateKeypair(%q): %v", spec.Name, err)
	}
	deleted := false
	t.Cleanup(func() {
		if !deleted {
			ctx, cancel := s.cleanupCtx()
			defer cancel()
			_ = s.c.DeleteKeypair(ctx, kp.Name)
		}
	})
	check := func(what string, got peers.Keypair) {
		t.Helper()
		if got.Name != spec.Name || strings.TrimSpace(got.PublicKey) != strings.TrimSpace(spec.PublicKey) ||
			got.Fingerprint == "" || (got.Type != "" && got.Type != "ssh") {
			t.Fatalf("%s = %+v\nwant name %q, the imported public key, a fingerprint and type ssh", what, got, spec.Name)
		}
	}
	check("CreateKeypair", kp)

	got, err := s.c.GetKeypair(ctx, kp.Name)
	if err != nil {
		t.Fatalf("GetKeypair(%q): %v", kp.Name, err)
	}
	check("GetKeypair", got)
	if got.Fingerprint != kp.Fingerprint {
		t.Fatalf("GetKeypair fingerprint %q, CreateKeypair said %q", got.Fingerprint, kp.Fingerprint)
	}

	// Keypairs carry no metadata, so only the unfiltered list is sure to
	// show them on every cloud.
	all, err := s.c.ListKeypairs(ctx, peers.ListOptions{})
	if err != nil {
		t.Fatalf("ListKeypairs: %v", err)
	}
	if names := ids(all, func(k peers.Keypair) string { return k.Name }); !slices.Contains(names, kp.Name) {
		t.Fatalf("ListKeypairs = %v, want it to contain %q", names, kp.Name)
	}

	_, err = s.c.CreateKeypair(ctx, peers.KeypairSpec{Name: kp.Name, Project: s.fx.Project, PublicKey: sshPublicKey()})
	wantErr(t, "CreateKeypair with a name in use", err, peers.ErrConflict)

	if err := s.c.DeleteKeypair(ctx, kp.Name); err != nil {
		t.Fatalf("DeleteKeypair(%q): %v", kp.Name, err)
	}
	deleted = true
	_, err = s.c.GetKeypair(ctx, kp.Name)
	wantErr(t, "GetKeypair after delete", err, peers.ErrNotFound)
	err = s.c.DeleteKeypair(ctx, kp.Name)
	wantErr(t, "DeleteKeypair twice", err, peers.ErrNotFound)
}

// testKeypairRefusals imports keys Nova refuses with 400. An empty public key
// is not among them: Nova (before microversion 2.92) generates a keypair then.
func (s *suite) testKeypairRefusals(t *testing.T) {
	cases := []struct {
		name string
		spec peers.KeypairSpec
	}{
		{"Garbage", peers.KeypairSpec{Name: s.name("bad"), PublicKey: "this is not a key"}},
		{"TruncatedRSA", peers.KeypairSpec{Name: s.name("bad"), PublicKey: "ssh-rsa AAAA"}},
		{"BadBase64", peers.KeypairSpec{Name: s.name("bad"), PublicKey: "ssh-ed25519 !!!not-base64!!!"}},
		{"NameWithSlash", peers.KeypairSpec{Name: "peertest/" + s.run, PublicKey: sshPublicKey()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Project = s.fx.Project
			kp, err := s.c.CreateKeypair(t.Context(), tc.spec)
			if err == nil {
				t.Cleanup(func() {
					ctx, cancel := s.cleanupCtx()
					defer cancel()
					_ = s.c.DeleteKeypair(ctx, kp.Name)
				})
			}
			wantErr(t, "CreateKeypair "+tc.name, err, peers.ErrInvalid)
		})
	}
}
