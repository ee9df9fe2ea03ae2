package peertest

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

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

	t.Run("Generated", s.testGeneratedKeypair)
}

// testGeneratedKeypair asks the cloud to generate a key pair (no public
// key): the private key comes back once, parses, and matches the public
// key; later reads never show it. Nova did this before microversion 2.92; a
// driver over a newer Nova generates the pair itself and imports it.
func (s *suite) testGeneratedKeypair(t *testing.T) {
	ctx := t.Context()
	name := s.name("genkey")
	kp, err := s.c.CreateKeypair(ctx, peers.KeypairSpec{Name: name, Project: s.fx.Project})
	if err != nil {
		t.Fatalf("CreateKeypair(%q) without a public key: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		_ = s.c.DeleteKeypair(ctx, name)
	})
	if kp.Name != name || kp.PrivateKey == "" || kp.PublicKey == "" || kp.Fingerprint == "" || (kp.Type != "" && kp.Type != "ssh") {
		t.Fatalf("generated keypair = %+v\nwant name %q, type ssh, a public key, a fingerprint and the private key", kp, name)
	}
	signer, err := ssh.ParsePrivateKey([]byte(kp.PrivateKey))
	if err != nil {
		t.Fatalf("the generated private key does not parse: %v", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(kp.PublicKey))
	if err != nil {
		t.Fatalf("the generated public key %q does not parse: %v", kp.PublicKey, err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), pub.Marshal()) {
		t.Fatalf("the generated private key is not the pair of public key %q", kp.PublicKey)
	}
	// Nova's fingerprint of an SSH key: MD5 of the key blob, colon-hex.
	if want := ssh.FingerprintLegacyMD5(pub); kp.Fingerprint != want {
		t.Fatalf("generated keypair's fingerprint %q, want %q (MD5 of the public key)", kp.Fingerprint, want)
	}
	got, err := s.c.GetKeypair(ctx, name)
	if err != nil {
		t.Fatalf("GetKeypair(%q): %v", name, err)
	}
	if got.PrivateKey != "" || strings.TrimSpace(got.PublicKey) != strings.TrimSpace(kp.PublicKey) || got.Fingerprint != kp.Fingerprint {
		t.Fatalf("GetKeypair of a generated keypair = %+v\nwant the same public key and fingerprint, and no private key", got)
	}
	all, err := s.c.ListKeypairs(ctx, peers.ListOptions{})
	if err != nil {
		t.Fatalf("ListKeypairs: %v", err)
	}
	for _, k := range all {
		if k.PrivateKey != "" {
			t.Fatalf("ListKeypairs shows the private key of %q", k.Name)
		}
	}
	_, err = s.c.CreateKeypair(ctx, peers.KeypairSpec{Name: name, Project: s.fx.Project})
	wantErr(t, "generating a keypair with a name in use", err, peers.ErrConflict)
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
