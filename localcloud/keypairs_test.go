package localcloud_test

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/cloudmux/cloudmux/peers"
)

// novaFingerprintRE is Nova's SSH fingerprint: MD5 of the key blob,
// colon-separated hex.
var novaFingerprintRE = regexp.MustCompile(`^([0-9a-f]{2}:){15}[0-9a-f]{2}$`)

func TestKeypairGeneration(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	kp, err := c.CreateKeypair(t.Context(), peers.KeypairSpec{Name: "gen", Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if kp.Type != "ssh" || kp.PrivateKey == "" || !novaFingerprintRE.MatchString(kp.Fingerprint) {
		t.Fatalf("generated keypair = %+v\nwant type ssh, a private key and a Nova fingerprint", kp)
	}
	if !strings.HasPrefix(kp.PrivateKey, "-----BEGIN RSA PRIVATE KEY-----") {
		t.Fatalf("private key starts %q, want a PKCS#1 PEM as Nova returned", kp.PrivateKey[:min(40, len(kp.PrivateKey))])
	}
	signer, err := ssh.ParsePrivateKey([]byte(kp.PrivateKey))
	if err != nil {
		t.Fatalf("the generated private key does not parse: %v", err)
	}
	pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(kp.PublicKey))
	if err != nil {
		t.Fatalf("the generated public key does not parse: %v", err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), pub.Marshal()) {
		t.Fatal("the private key does not match the public key")
	}
	if got := ssh.FingerprintLegacyMD5(pub); got != kp.Fingerprint {
		t.Fatalf("fingerprint %s, want %s (MD5 of the public key blob)", kp.Fingerprint, got)
	}
	if pub.Type() != ssh.KeyAlgoRSA || comment != "Generated-by-cloudmux" {
		t.Fatalf("public key is %s %q, want ssh-rsa marked Generated-by-cloudmux", pub.Type(), comment)
	}
	if k, ok := pub.(ssh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
		t.Fatalf("public key is %T, want a 2048-bit RSA key", pub.(ssh.CryptoPublicKey).CryptoPublicKey())
	}
	// The key signs, and the public key verifies it.
	sig, err := signer.Sign(nil, []byte("challenge"))
	if err != nil || pub.Verify([]byte("challenge"), sig) != nil {
		t.Fatalf("sign/verify with the generated pair: %v", err)
	}

	for range 2 {
		got, err := c.GetKeypair(t.Context(), "gen")
		if err != nil || got.PrivateKey != "" || got.PublicKey != kp.PublicKey || got.Fingerprint != kp.Fingerprint {
			t.Fatalf("GetKeypair = %+v, %v; want the public key only, never the private key", got, err)
		}
	}
	list, err := c.ListKeypairs(t.Context(), peers.ListOptions{})
	if err != nil || len(list) != 1 || list[0].PrivateKey != "" {
		t.Fatalf("ListKeypairs = %+v, %v; want the keypair without its private key", list, err)
	}
	// A second generation makes a different pair.
	other, err := c.CreateKeypair(t.Context(), peers.KeypairSpec{Name: "gen2", Project: "p"})
	if err != nil || other.PrivateKey == kp.PrivateKey || other.Fingerprint == kp.Fingerprint {
		t.Fatalf("a second generated keypair = %v; want a different key", err)
	}
}

func TestKeypairRefusals(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	if _, err := c.CreateKeypair(t.Context(), peers.KeypairSpec{Name: "taken", Project: "p"}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.GetKeypair(t.Context(), "taken")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec peers.KeypairSpec
		want error
	}{
		{"DuplicateNameGenerated", peers.KeypairSpec{Name: "taken"}, peers.ErrConflict},
		{"DuplicateNameImported", peers.KeypairSpec{Name: "taken", PublicKey: pub.PublicKey}, peers.ErrConflict},
		{"GarbageKey", peers.KeypairSpec{Name: "bad", PublicKey: "not a key"}, peers.ErrInvalid},
		{"TruncatedKey", peers.KeypairSpec{Name: "bad", PublicKey: "ssh-rsa AAAA"}, peers.ErrInvalid},
		{"TwoKeys", peers.KeypairSpec{Name: "bad", PublicKey: pub.PublicKey + "\n" + pub.PublicKey}, peers.ErrInvalid},
		{"BadName", peers.KeypairSpec{Name: "a/b"}, peers.ErrInvalid},
		{"UnknownType", peers.KeypairSpec{Name: "bad", Type: "gpg"}, peers.ErrInvalid},
		{"GenerateX509", peers.KeypairSpec{Name: "bad", Type: "x509"}, peers.ErrNotSupported},
		{"BadCertificate", peers.KeypairSpec{Name: "bad", Type: "x509", PublicKey: pub.PublicKey}, peers.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Project = "p"
			kp, err := c.CreateKeypair(t.Context(), tc.spec)
			if !errors.Is(err, tc.want) {
				t.Fatalf("CreateKeypair = %+v, %v; want %v", kp, err, tc.want)
			}
		})
	}
	if _, err := c.GetKeypair(t.Context(), "bad"); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("a refused keypair was stored: %v", err)
	}
}
