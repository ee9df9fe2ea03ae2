package openstack

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"

	"github.com/cloudmux/cloudmux/peers"
)

// CreateKeypair imports a public key. Without one, the pair is generated
// here (peers.GenerateSSHKeypair) and its public half imported: Nova stopped
// generating at 2.92, and generating locally gives the same key type and
// private-key format whatever the cloud's version. Names and keys are
// checked here with the rules Nova applies, so every Nova version refuses
// the same things (2.92 relaxed the name rule).
func (c *Cloud) CreateKeypair(ctx context.Context, spec peers.KeypairSpec) (peers.Keypair, error) {
	if !peers.ValidKeypairName(spec.Name) {
		return peers.Keypair{}, fmt.Errorf("nova: keypair name %q: 1 to 255 letters, digits, spaces or . _ - @: %w", spec.Name, peers.ErrInvalid)
	}
	typ := spec.Type
	if typ == "" {
		typ = "ssh"
	}
	var private string
	public := spec.PublicKey
	if public == "" {
		if typ != "ssh" {
			return peers.Keypair{}, fmt.Errorf("nova: generating a %s keypair: %w", typ, peers.ErrNotSupported)
		}
		var err error
		if public, private, err = peers.GenerateSSHKeypair(); err != nil {
			return peers.Keypair{}, err
		}
	}
	if _, err := peers.KeypairFingerprint(typ, public); err != nil {
		return peers.Keypair{}, fmt.Errorf("nova: keypair %q: %w", spec.Name, err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	opts := keypairs.CreateOpts{Name: spec.Name, PublicKey: public}
	if c.computeMinor >= 2 {
		opts.Type = typ
	}
	kp, err := keypairs.Create(ctx, c.compute, opts).Extract()
	if err != nil {
		return peers.Keypair{}, c.translate(fmt.Sprintf("nova: create keypair %q", spec.Name), err)
	}
	out := c.toKeypair(*kp)
	out.PrivateKey = private
	return out, nil
}

// GetKeypair shows a keypair of the credentials' user.
func (c *Cloud) GetKeypair(ctx context.Context, name string) (peers.Keypair, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	kp, err := keypairs.Get(ctx, c.compute, name, nil).Extract()
	if err != nil {
		return peers.Keypair{}, c.translate(fmt.Sprintf("nova: show keypair %q", name), err)
	}
	return c.toKeypair(*kp), nil
}

// ListKeypairs lists the user's keypairs. Keypairs carry no metadata, so a
// metadata filter matches none; they count as the scoped project's.
func (c *Cloud) ListKeypairs(ctx context.Context, opts peers.ListOptions) ([]peers.Keypair, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	pages, err := keypairs.List(c.compute, nil).AllPages(ctx)
	if err != nil {
		return nil, c.translate("nova: list keypairs", err)
	}
	all, err := keypairs.ExtractKeyPairs(pages)
	if err != nil {
		return nil, c.translate("nova: list keypairs", err)
	}
	var out []peers.Keypair
	for _, kp := range all {
		k := c.toKeypair(kp)
		if opts.Matches(k.Project, nil) {
			out = append(out, k)
		}
	}
	return out, nil
}

// DeleteKeypair deletes a keypair.
func (c *Cloud) DeleteKeypair(ctx context.Context, name string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	err := keypairs.Delete(ctx, c.compute, name, nil).ExtractErr()
	return c.translate(fmt.Sprintf("nova: delete keypair %q", name), err)
}

func (c *Cloud) toKeypair(kp keypairs.KeyPair) peers.Keypair {
	typ := kp.Type
	if typ == "" {
		typ = "ssh" // before 2.2 every keypair is ssh
	}
	return peers.Keypair{Name: kp.Name, Project: c.project, UserID: kp.UserID, Type: typ,
		PublicKey: kp.PublicKey, Fingerprint: kp.Fingerprint}
}
