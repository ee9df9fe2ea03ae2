package localcloud

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/cloudmux/cloudmux/peers"
)

// keypairNameRE is Nova's rule for keypair names.
var keypairNameRE = regexp.MustCompile(`^[a-zA-Z0-9 _.@-]{1,255}$`)

// CreateKeypair imports a public key: an SSH key in authorized_keys form
// (type "ssh", the default) or a PEM certificate (type "x509"). With no
// public key it generates an SSH key pair, as Nova before microversion 2.92
// did, and returns the private key in this answer only: it is never stored.
// Names are unique across the cloud.
func (c *Cloud) CreateKeypair(ctx context.Context, spec peers.KeypairSpec) (peers.Keypair, error) {
	if err := ctx.Err(); err != nil {
		return peers.Keypair{}, err
	}
	if !keypairNameRE.MatchString(spec.Name) {
		return peers.Keypair{}, errf(peers.ErrInvalid, "keypair name %q: want 1 to 255 letters, digits, spaces or . _ - @", spec.Name)
	}
	typ := spec.Type
	if typ == "" {
		typ = "ssh"
	}
	var fp, private string
	var err error
	switch {
	case typ == "ssh" && strings.TrimSpace(spec.PublicKey) == "":
		if err = c.keypairNameFree(ctx, spec.Name); err != nil {
			return peers.Keypair{}, err
		}
		if spec.PublicKey, private, err = generateSSHKeypair(); err == nil {
			fp, err = sshFingerprint(spec.PublicKey)
		}
	case typ == "x509" && strings.TrimSpace(spec.PublicKey) == "":
		err = errf(peers.ErrNotSupported, "generating an x509 keypair; import a certificate")
	case typ == "ssh":
		fp, err = sshFingerprint(spec.PublicKey)
	case typ == "x509":
		fp, err = x509Fingerprint(spec.PublicKey)
	default:
		err = errf(peers.ErrInvalid, "type %q: want ssh or x509", typ)
	}
	if err != nil {
		return peers.Keypair{}, fmt.Errorf("keypair %s: %w", spec.Name, err)
	}
	kp := peers.Keypair{
		Name: spec.Name, Project: spec.Project, UserID: spec.UserID, Type: typ,
		PublicKey: strings.TrimSpace(spec.PublicKey), Fingerprint: fp, CreatedAt: now(),
	}
	if err := c.begin(ctx); err != nil {
		return peers.Keypair{}, err
	}
	defer c.mu.Unlock()
	if _, dup := c.keypairs[kp.Name]; dup {
		return peers.Keypair{}, errf(peers.ErrConflict, "keypair %s already exists", kp.Name)
	}
	c.keypairs[kp.Name] = &kp
	how := "keypair imported"
	if private != "" {
		how = "keypair generated"
	}
	c.log.WithFields(logrus.Fields{"keypair": kp.Name, "project": kp.Project, "fingerprint": fp}).Info(how)
	out := kp
	out.PrivateKey = private
	return out, nil
}

// keypairNameFree refuses a name in use before the work of generating a key
// pair for it; CreateKeypair checks again when it stores the pair.
func (c *Cloud) keypairNameFree(ctx context.Context, name string) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if _, dup := c.keypairs[name]; dup {
		return errf(peers.ErrConflict, "keypair %s already exists", name)
	}
	return nil
}

// generatedKeyComment ends a generated public key, as Nova's
// "Generated-by-Nova".
const generatedKeyComment = "Generated-by-cloudmux"

// generateSSHKeypair makes an RSA 2048 key pair, what Nova generated: the
// public key in authorized_keys form and the private key as a PKCS#1 PEM
// ("BEGIN RSA PRIVATE KEY"), which OpenSSH, paramiko, PuTTYgen and
// golang.org/x/crypto/ssh all read. RSA rather than ed25519 because the
// key goes into guests of any age: dropbear before 2020.79 (CirrOS 0.5 and
// older) and other old sshds know no ed25519; every sshd knows RSA, and
// OpenSSH signs with it by rsa-sha2-256/512, not the retired SHA-1.
func generateSSHKeypair() (public, private string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", fmt.Errorf("generating an RSA key: %w", err)
	}
	pub, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("encoding the public key: %w", err)
	}
	public = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + generatedKeyComment
	private = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	return public, private, nil
}

// sshFingerprint parses an authorized_keys line and returns Nova's
// fingerprint of it: colon-separated MD5 of the key blob.
func sshFingerprint(pub string) (string, error) {
	key, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		return "", errf(peers.ErrInvalid, "public key is not an SSH public key (%v)", err)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return "", errf(peers.ErrInvalid, "public key: want exactly one key")
	}
	return ssh.FingerprintLegacyMD5(key), nil
}

// x509Fingerprint parses a PEM certificate and returns Nova's fingerprint of
// it: colon-separated SHA-1 of the DER bytes.
func x509Fingerprint(pub string) (string, error) {
	block, _ := pem.Decode([]byte(pub))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errf(peers.ErrInvalid, "public key: want a PEM CERTIFICATE for type x509")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", errf(peers.ErrInvalid, "public key: certificate does not parse (%v)", err)
	}
	sum := sha1.Sum(block.Bytes)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":"), nil
}

// GetKeypair returns the keypair called name.
func (c *Cloud) GetKeypair(ctx context.Context, name string) (peers.Keypair, error) {
	if err := c.begin(ctx); err != nil {
		return peers.Keypair{}, err
	}
	defer c.mu.Unlock()
	kp, ok := c.keypairs[name]
	if !ok {
		return peers.Keypair{}, notFound("keypair", name)
	}
	return *kp, nil
}

// ListKeypairs returns the keypairs passing opts, by name. Keypairs carry
// no metadata, so a metadata filter matches none.
func (c *Cloud) ListKeypairs(ctx context.Context, opts peers.ListOptions) ([]peers.Keypair, error) {
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	var out []peers.Keypair
	for _, kp := range c.keypairs {
		if opts.Matches(kp.Project, nil) {
			out = append(out, *kp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteKeypair removes a keypair. Servers booted with it keep the key they
// were given.
func (c *Cloud) DeleteKeypair(ctx context.Context, name string) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if _, ok := c.keypairs[name]; !ok {
		return notFound("keypair", name)
	}
	delete(c.keypairs, name)
	c.log.WithField("keypair", name).Info("keypair deleted")
	return nil
}
