package peers

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Keypair helpers shared by every place that holds keypairs (the local
// cloud, the broker's os-keypairs), so they agree on names, generation and
// fingerprints.

// keypairNameRE is Nova's rule for keypair names.
var keypairNameRE = regexp.MustCompile(`^[a-zA-Z0-9 _.@-]{1,255}$`)

// ValidKeypairName applies Nova's rule: 1 to 255 letters, digits, spaces
// or . _ - @.
func ValidKeypairName(name string) bool { return keypairNameRE.MatchString(name) }

// GeneratedKeyComment ends a generated public key, as Nova's
// "Generated-by-Nova".
const GeneratedKeyComment = "Generated-by-cloudmux"

// GenerateSSHKeypair makes an RSA 2048 key pair, what Nova generated: the
// public key in authorized_keys form and the private key as a PKCS#1 PEM
// ("BEGIN RSA PRIVATE KEY"), which OpenSSH, paramiko, PuTTYgen and
// golang.org/x/crypto/ssh all read. RSA rather than ed25519 because the
// key goes into guests of any age: dropbear before 2020.79 (CirrOS 0.5 and
// older) and other old sshds know no ed25519; every sshd knows RSA, and
// OpenSSH signs with it by rsa-sha2-256/512, not the retired SHA-1.
func GenerateSSHKeypair() (public, private string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", fmt.Errorf("generating an RSA key: %w", err)
	}
	pub, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("encoding the public key: %w", err)
	}
	public = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + GeneratedKeyComment
	private = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	return public, private, nil
}

// KeypairFingerprint validates a public key of type "ssh" (one
// authorized_keys line) or "x509" (a PEM certificate) and returns Nova's
// fingerprint of it: colon-separated MD5 of the SSH key blob, or SHA-1 of
// the certificate's DER. Bad keys wrap ErrInvalid.
func KeypairFingerprint(typ, public string) (string, error) {
	switch typ {
	case "", "ssh":
		key, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(public))
		if err != nil {
			return "", fmt.Errorf("public key is not an SSH public key (%v): %w", err, ErrInvalid)
		}
		if strings.TrimSpace(string(rest)) != "" {
			return "", fmt.Errorf("public key: want exactly one key: %w", ErrInvalid)
		}
		return ssh.FingerprintLegacyMD5(key), nil
	case "x509":
		block, _ := pem.Decode([]byte(public))
		if block == nil || block.Type != "CERTIFICATE" {
			return "", fmt.Errorf("public key: want a PEM CERTIFICATE for type x509: %w", ErrInvalid)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "", fmt.Errorf("public key: certificate does not parse (%v): %w", err, ErrInvalid)
		}
		sum := sha1.Sum(block.Bytes)
		parts := make([]string, len(sum))
		for i, b := range sum {
			parts[i] = fmt.Sprintf("%02x", b)
		}
		return strings.Join(parts, ":"), nil
	}
	return "", fmt.Errorf("type %q: want ssh or x509: %w", typ, ErrInvalid)
}
