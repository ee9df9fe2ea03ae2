package localcloud

import (
	"context"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// CreateKeypair imports a public key: an SSH key in authorized_keys form
// (type "ssh", the default) or a PEM certificate (type "x509"). With no
// public key it generates an SSH key pair, as Nova before microversion 2.92
// did, and returns the private key in this answer only: it is never stored.
// Names are unique across the cloud.
func (c *Cloud) CreateKeypair(ctx context.Context, spec peers.KeypairSpec) (peers.Keypair, error) {
	if err := ctx.Err(); err != nil {
		return peers.Keypair{}, err
	}
	if !peers.ValidKeypairName(spec.Name) {
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
		if spec.PublicKey, private, err = peers.GenerateSSHKeypair(); err == nil {
			fp, err = peers.KeypairFingerprint(typ, spec.PublicKey)
		}
	case typ == "x509" && strings.TrimSpace(spec.PublicKey) == "":
		err = errf(peers.ErrNotSupported, "generating an x509 keypair; import a certificate")
	default:
		fp, err = peers.KeypairFingerprint(typ, spec.PublicKey)
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
	c.markLocked(recKeypair, kp.Name)
	c.saveLocked()
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

// GetKeypair returns the keypair called name.
func (c *Cloud) GetKeypair(ctx context.Context, name string) (peers.Keypair, error) {
	return getView(c, ctx, "keypair", c.keypairs, name, keypairView)
}

func keypairView(kp *peers.Keypair) peers.Keypair { return *kp }

// ListKeypairs returns the keypairs passing opts, by name. Keypairs carry
// no metadata, so a metadata filter matches none.
func (c *Cloud) ListKeypairs(ctx context.Context, opts peers.ListOptions) ([]peers.Keypair, error) {
	return listViews(c, ctx, c.keypairs, func(kp *peers.Keypair) bool { return opts.Matches(kp.Project, nil) }, keypairView,
		func(a, b peers.Keypair) int { return strings.Compare(a.Name, b.Name) })
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
	c.markLocked(recKeypair, name)
	c.saveLocked()
	c.log.WithField("keypair", name).Info("keypair deleted")
	return nil
}
