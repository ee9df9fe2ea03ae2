package compute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/peers"
)

// plan is what Create resolved before placement.
type plan struct {
	flavor     peers.Flavor      // as the broker shows it (merged)
	peerFlavor map[string]string // peer ID -> that peer's ID of the flavor
	image      *image.Image      // nil when booting from a volume
	// imageOn maps the peers holding the image (its home, and copies the
	// stager recorded) to the image's ID there.
	imageOn    map[string]string
	bootVolume index.Entry // zero when booting from an image
	nics       []resolvedNIC
	keypair    *peers.Keypair
	// rootVolumeGiB is CreateSpec.RootVolumeGiB.
	rootVolumeGiB int
	candidates    []*peers.Member // connected peers holding every reference
	rejected      []string        // why each other peer is not a candidate
	// hostname is the guest hostname the peer must set: one asked for
	// that differs from what every cloud derives from the name.
	hostname string
	// groups are the security groups' IDs (nil without a network
	// service that has them).
	groups []string
}

// resolvedNIC is a NIC request on its peer.
type resolvedNIC struct {
	ref                            string // the broker ID asked for
	peerID                         string
	peerNetwork, peerPort, fixedIP string
}

// lastSegment takes the ID out of a reference given as a URL, as Nova
// accepts (flavorRef and imageRef may be hrefs).
func lastSegment(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 && strings.Contains(ref, "://") {
		return ref[i+1:]
	}
	return ref
}

// plan resolves every reference of spec and picks the candidate peers.
func (s *Servers) plan(ctx context.Context, c Caller, spec CreateSpec) (plan, error) {
	p := plan{peerFlavor: map[string]string{}, rootVolumeGiB: spec.RootVolumeGiB}
	members, down := s.connected()
	for _, name := range down {
		p.rejected = append(p.rejected, name+": not connected")
	}
	if az := spec.AvailabilityZone; az != "" && !peers.Named(s.Pool.Members(), az) {
		return p, invalid("availability_zone", "Availability zone '%s' is invalid: each peer of the pool is a zone (GET /os-availability-zone)", az)
	}
	var errs []error

	// Flavor: the merged list's ID or name; each peer's own ID by name.
	// The peers' lists come from the flavor cache; a flavor it lacks may
	// be new, so a miss asks the peers again.
	ref := lastSegment(spec.FlavorRef)
	res := s.cachedFlavors(ctx, members, false)
	merged, i := findFlavor(res, ref)
	if i < 0 {
		res = s.cachedFlavors(ctx, members, true)
		merged, i = findFlavor(res, ref)
	}
	if i < 0 {
		errs = append(errs, invalid("flavorRef", "Invalid flavorRef provided: flavor %s could not be found", ref))
	} else {
		p.flavor = merged[i]
	}
	flavorless := map[string]string{}
	for _, r := range res {
		if r.Err != nil {
			flavorless[r.Member.Peer.ID] = fmt.Sprintf("%s: did not answer (%v)", r.Member.Peer.Name, r.Err)
			continue
		}
		if j := slices.IndexFunc(r.Value, func(f peers.Flavor) bool { return f.Name == p.flavor.Name }); j >= 0 {
			p.peerFlavor[r.Member.Peer.ID] = r.Value[j].ID
		} else {
			flavorless[r.Member.Peer.ID] = fmt.Sprintf("%s: has no flavor %s", r.Member.Peer.Name, p.flavor.Name)
		}
	}

	var err error
	if p.groups, err = s.resolveGroups(ctx, c, spec.SecurityGroups); err != nil {
		errs = append(errs, err)
	}
	if spec.ImageRef != "" {
		if err := s.resolveImage(ctx, c, lastSegment(spec.ImageRef), &p, i >= 0); err != nil {
			errs = append(errs, err)
		}
	}
	if spec.BootVolume != "" {
		e, err := s.Index.Get(ctx, kindVolume, spec.BootVolume, c.Project)
		switch {
		case errors.Is(err, index.ErrNotFound):
			errs = append(errs, invalid("block_device_mapping_v2", "Invalid input for field/attribute block_device_mapping_v2: volume %s could not be found", spec.BootVolume))
		case err != nil:
			return p, err
		default:
			p.bootVolume = e
		}
	}
	for n, nic := range spec.NICs {
		r, err := s.resolveNIC(ctx, c, nic)
		if err != nil {
			if errors.Is(err, ErrInvalid) {
				errs = append(errs, invalid("networks", "Invalid input for field/attribute networks[%d]: %v", n, err))
				continue
			}
			return p, err
		}
		p.nics = append(p.nics, r)
	}
	if spec.KeyName != "" {
		kp, err := s.Keypairs.Get(ctx, c.User, spec.KeyName)
		switch {
		case errors.Is(err, peers.ErrNotFound):
			errs = append(errs, invalid("key_name", "Invalid key_name provided: keypair %s not found", spec.KeyName))
		case err != nil:
			return p, err
		default:
			p.keypair = &kp
		}
	}
	if err := errors.Join(errs...); err != nil {
		return p, err
	}

	// Candidates: the connected peers holding everything the server needs.
	for _, m := range members {
		var why []string
		if r, ok := flavorless[m.Peer.ID]; ok {
			why = append(why, r)
		}
		if az := spec.AvailabilityZone; az != "" && m.Peer.Name != az {
			why = append(why, fmt.Sprintf("%s: not availability zone %s", m.Peer.Name, az))
		}
		if p.image != nil {
			if r := s.imageReason(p, m); r != "" {
				why = append(why, r)
			}
		}
		if p.bootVolume.PeerID != "" && p.bootVolume.PeerID != m.Peer.ID {
			why = append(why, fmt.Sprintf("%s: does not hold volume %s", m.Peer.Name, p.bootVolume.ID))
		}
		for _, n := range p.nics {
			if n.peerID != m.Peer.ID {
				why = append(why, fmt.Sprintf("%s: does not hold network or port %s", m.Peer.Name, n.ref))
			}
		}
		if len(why) == 0 {
			p.candidates = append(p.candidates, m)
		} else {
			p.rejected = append(p.rejected, why...)
		}
	}
	if len(p.candidates) == 0 {
		return p, &Error{Message: "No valid host was found: no connected peer holds everything the server needs. " + strings.Join(p.rejected, "; "), Err: ErrNoValidHost}
	}
	return p, nil
}

// resolveImage finds imageRef with Glance's visibility rules and checks
// it against the flavor as Nova does (FlavorMemoryTooSmall,
// FlavorDiskTooSmall: 400s).
func (s *Servers) resolveImage(ctx context.Context, c Caller, ref string, p *plan, haveFlavor bool) error {
	img, err := s.Images.Resolve(ctx, c.image(), ref)
	switch {
	case errors.Is(err, image.ErrNotFound):
		return invalid("imageRef", "Invalid imageRef provided: image %s could not be found", ref)
	case errors.Is(err, image.ErrUnavailable):
		return &Error{Field: "imageRef", Message: fmt.Sprintf("Image %s is on a cloud that is not reachable now; retry later.", ref), Err: faults.WithCause(ErrUnavailable, err)}
	case err != nil:
		return err
	}
	if img.Status != peers.ImageActive {
		return invalid("imageRef", "Image %s is not active (status %s)", img.ID, img.Status)
	}
	p.image = &img
	p.imageOn = map[string]string{img.PeerID: img.PeerImageID}
	if s.Stager != nil {
		reps, err := s.Stager.Replicas(ctx, img.PeerImageID)
		if err != nil {
			return err
		}
		for _, r := range reps {
			p.imageOn[r.PeerID] = r.PeerImageID
		}
	}
	if !haveFlavor {
		return nil
	}
	f := p.flavor
	if root := p.rootVolumeGiB; root > 0 {
		// The root disk is the new volume, not the flavor's disk.
		if img.MinDiskGiB > root || img.Size > int64(root)<<30 {
			return invalid("block_device_mapping_v2", "Volume size %d GiB is too small for image %s (min_disk %d GiB, %d bytes)", root, img.ID, img.MinDiskGiB, img.Size)
		}
		f.DiskGiB = 0
	}
	if img.MinRAMMiB > f.RAMMiB {
		return invalid("flavorRef", "Flavor's memory is too small for requested image: flavor %s has %d MiB, image %s needs min_ram %d MiB", f.Name, f.RAMMiB, img.ID, img.MinRAMMiB)
	}
	if f.DiskGiB > 0 && img.MinDiskGiB > f.DiskGiB {
		return invalid("flavorRef", "Flavor's disk is too small for requested image: flavor %s has %d GiB, image %s needs min_disk %d GiB", f.Name, f.DiskGiB, img.ID, img.MinDiskGiB)
	}
	if f.DiskGiB > 0 && img.Size > int64(f.DiskGiB)<<30 {
		return invalid("flavorRef", "Flavor's disk is too small for requested image: flavor %s has %d GiB, image %s is %d bytes", f.Name, f.DiskGiB, img.ID, img.Size)
	}
	return nil
}

// imageReason says why m cannot boot the plan's image, or "": it holds
// the image, or the stager can copy it there (both peers move image
// bytes, and the home peer is connected).
func (s *Servers) imageReason(p plan, m *peers.Member) string {
	if _, ok := p.imageOn[m.Peer.ID]; ok {
		return ""
	}
	if s.Stager == nil {
		return fmt.Sprintf("%s: does not hold image %s (it is on %s)", m.Peer.Name, p.image.ID, p.image.PeerName)
	}
	home, ok := s.Pool.Get(p.image.PeerID)
	if !ok || home.Cloud == nil {
		return fmt.Sprintf("%s: does not hold image %s, and its home %s is not connected to copy it from", m.Peer.Name, p.image.ID, p.image.PeerName)
	}
	_, from := home.Cloud.(peers.ImageData)
	_, to := m.Cloud.(peers.ImageData)
	if !from || !to {
		return fmt.Sprintf("%s: does not hold image %s, and cannot receive a copy from %s", m.Peer.Name, p.image.ID, p.image.PeerName)
	}
	return ""
}

// bootImage returns the ID on m of the plan's image, staging a copy
// there first if m does not hold one.
func (s *Servers) bootImage(ctx context.Context, p plan, m *peers.Member) (string, error) {
	if p.image.PeerID == m.Peer.ID {
		return p.image.PeerImageID, nil
	}
	if s.Stager == nil {
		return "", fmt.Errorf("%s does not hold image %s: %w", m.Peer.Name, p.image.ID, ErrInvalid)
	}
	home, ok := s.Pool.Get(p.image.PeerID)
	if !ok || home.Cloud == nil {
		return "", fmt.Errorf("the home of image %s is not connected: %w", p.image.ID, ErrUnavailable)
	}
	src := p.image.Image // as the home peer has it: its ID there
	src.ID = p.image.PeerImageID
	rep, err := s.Stager.Ensure(ctx, src, home, m)
	if err != nil {
		// The copy failed or did not fit: another peer may do.
		return "", fmt.Errorf("staging image %s on %s: %v: %w", p.image.ID, m.Peer.Name, err, peers.ErrUnavailable)
	}
	return rep.PeerImageID, nil
}

// resolveNIC finds a NIC's network or port through the network service,
// so servers follow the network API's visibility rules: the project's own
// networks and ports, others' shared networks, a peer's own shared
// networks, all by broker ID (never a peer's). One the project may not use is ErrInvalid ("could
// not be found"); an unreachable peer is ErrUnavailable.
func (s *Servers) resolveNIC(ctx context.Context, c Caller, nic NIC) (resolvedNIC, error) {
	kind, id := network.KindNetwork, nic.Network
	if nic.Port != "" {
		kind, id = network.KindPort, nic.Port
	}
	ref, err := s.Networks.Resolve(ctx, c.Project, kind, id)
	switch {
	case errors.Is(err, peers.ErrNotFound):
		return resolvedNIC{}, fmt.Errorf("%s %s could not be found: %w", kind, id, ErrInvalid)
	case err != nil:
		return resolvedNIC{}, err
	}
	if kind == network.KindNetwork {
		// Visible is not usable: another's external network hands out the
		// cloud's public addresses (Nova: ExternalNetworkAttachForbidden).
		if err := s.Networks.Attachable(ctx, c.Project, ref); errors.Is(err, peers.ErrNotFound) {
			return resolvedNIC{}, fmt.Errorf("it is not allowed to create an interface on external network %s: %w", id, ErrForbidden)
		} else if err != nil {
			return resolvedNIC{}, err
		}
	}
	r := resolvedNIC{ref: id, peerID: ref.Member.Peer.ID, fixedIP: nic.FixedIP}
	if kind == network.KindPort {
		r.peerPort = ref.PeerResourceID
	} else {
		r.peerNetwork = ref.PeerResourceID
	}
	return r, nil
}

// autoNetwork is Nova's "auto" on peer m: the project's oldest network
// there with a subnet, else the peer's first shared network (by name) with
// a subnet, else none ("").
func (s *Servers) autoNetwork(ctx context.Context, c Caller, m *peers.Member) (string, error) {
	entries, err := s.Index.List(ctx, network.KindNetwork, c.Project)
	if err != nil {
		return "", err
	}
	slices.SortFunc(entries, func(a, b index.Entry) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for _, e := range entries {
		if e.PeerID != m.Peer.ID {
			continue
		}
		if n, err := m.Cloud.GetNetwork(ctx, e.PeerResourceID); err == nil && len(n.Subnets) > 0 {
			return n.ID, nil
		}
	}
	nets, err := m.Cloud.ListNetworks(ctx, peers.ListOptions{})
	if err != nil {
		return "", err
	}
	slices.SortFunc(nets, func(a, b peers.Network) int { return strings.Compare(a.Name, b.Name) })
	for _, n := range nets {
		if n.Shared && !n.External && len(n.Subnets) > 0 {
			return n.ID, nil
		}
	}
	return "", nil
}

// peerKeypairName names a user's keypair on a peer, where names are
// unique per cloud: a digest of the user, the name and the key, so two
// users' "default" never clash, and a keypair re-created with another key
// gets a new name instead of booting with the old key.
func peerKeypairName(user string, kp peers.Keypair) string {
	sum := sha256.Sum256([]byte(user + "\x00" + kp.Name + "\x00" + kp.Type + "\x00" + kp.PublicKey))
	return "cloudmux-" + hex.EncodeToString(sum[:16])
}

// importKeypair makes sure the peer holds the user's public key and
// returns its name there.
func importKeypair(ctx context.Context, cloud peers.Keypairs, c Caller, kp peers.Keypair) (string, error) {
	name := peerKeypairName(c.User, kp)
	_, err := cloud.GetKeypair(ctx, name)
	if err == nil {
		return name, nil
	}
	if !errors.Is(err, peers.ErrNotFound) {
		return "", err
	}
	_, err = cloud.CreateKeypair(ctx, peers.KeypairSpec{Name: name, Project: c.Project, UserID: c.User, Type: kp.Type, PublicKey: kp.PublicKey})
	if err != nil && !errors.Is(err, peers.ErrConflict) { // a concurrent boot imported it
		return "", fmt.Errorf("importing keypair %s: %w", kp.Name, err)
	}
	return name, nil
}
