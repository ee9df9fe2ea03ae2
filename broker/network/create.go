package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// NetworkCreate is a new network.
type NetworkCreate struct {
	Name        string
	Description string
	// Shared makes the network visible to every project; callers allow it
	// to cloud admins only, as Neutron's policy does.
	Shared bool
	// External makes it an external network (router:external): routers'
	// gateways and floating IPs take their addresses from it, and every
	// project sees it but cannot put ports on it unless it is also
	// shared. Callers allow it to cloud admins only, as Neutron's policy
	// does. Its peer gets no uplink from the broker: an external network
	// is as isolated as its peer makes it.
	External     bool
	AdminStateUp *bool
	MTU          int
	// ZoneHints are peer names (each peer is an availability zone): the
	// network goes to one of them.
	ZoneHints []string
	// Marks are cloudmux_ metadata an internal caller writes on the peer's
	// resource to find it again (see Marked); no API takes them.
	Marks map[string]string
}

// SubnetCreate is a new subnet on a network the project owns.
type SubnetCreate struct {
	Name        string
	Description string
	NetworkID   string // broker ID
	CIDR        string
	IPVersion   int
	// GatewayIP empty picks the first host address; NoGateway (Neutron's
	// "gateway_ip": null) has none.
	GatewayIP       string
	NoGateway       bool
	EnableDHCP      bool
	AllocationPools []peers.IPRange
	DNSNameservers  []string
	// Marks: as NetworkCreate's.
	Marks map[string]string
}

// PortCreate is a new port on a network the project may see.
type PortCreate struct {
	Name         string
	Description  string
	NetworkID    string          // broker ID
	FixedIPs     []peers.FixedIP // broker subnet IDs and/or addresses
	AdminStateUp *bool
	// SecurityGroups are group IDs of the project; nil is its default
	// group, as in Neutron.
	SecurityGroups []string
	// Marks: as NetworkCreate's.
	Marks map[string]string
}

// Update changes broker-kept attributes; nil fields stay.
type Update struct {
	Name         *string
	Description  *string
	AdminStateUp *bool
	// SecurityGroups (ports only) replaces the port's groups.
	SecurityGroups *[]string
}

// meta is what the broker writes on a peer's resource: its broker ID,
// project and installation, over the caller's marks.
func (s *Service) meta(project, id string, marks map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range marks {
		if strings.HasPrefix(k, "cloudmux_") {
			out[k] = v
		}
	}
	out[peers.MetaID], out[peers.MetaProject], out[peers.MetaBrokerID] = id, project, s.BrokerID
	return out
}

// record indexes a new resource and stores its attributes; on failure it
// undoes what it did and calls undo, so nothing is left unowned. When the
// index entry cannot be taken back, the resource stays too: an entry
// without its resource is listed nowhere and never cleaned, while a
// resource with its entry is only one the caller was not told of.
//
// The quota reservation res is committed before the index write (and the
// charge freed again if the create is undone): a broker dying in between
// leaves a counted resource an index rebuild adopts, never an uncounted one.
func (s *Service) record(ctx context.Context, e index.Entry, a *Attrs, undo func(context.Context) error, res *quota.Reservation) error {
	charge, err := commit(ctx, res)
	e.Charge = charge
	if err == nil {
		err = s.Index.Put(ctx, e)
		if err != nil {
			s.free(ctx, e.Project, charge)
		}
	}
	if err == nil && a != nil {
		if _, err = s.changeAttrs(ctx, e.Kind, e.ID, func(x *Attrs) { *x = *a }); err != nil {
			gone, removed, derr := s.Index.Remove(context.WithoutCancel(ctx), e)
			if removed {
				s.free(ctx, gone.Project, gone.Charge)
			}
			if derr != nil {
				s.Log.WithError(derr).WithFields(logrus.Fields{"kind": e.Kind, "id": e.ID, "project": e.Project}).
					Error("create failed after indexing and the entry could not be removed; the resource is kept with it")
				return err
			}
		}
	}
	if err != nil {
		if uerr := undo(context.WithoutCancel(ctx)); uerr != nil {
			s.Log.WithError(uerr).WithFields(logrus.Fields{"kind": e.Kind, "peer_resource": e.PeerResourceID}).Error("could not undo a create whose index write failed; the peer keeps an orphan")
		}
		return err
	}
	return nil
}

// dropHalfCreated removes what a peer may have made of a create that
// failed for want of an answer (a timeout after the peer acted, a cut
// connection): carrying our metadata but unindexed, it would be hidden
// from every list and never deleted. It is found by its broker ID in the
// metadata. Other failures are refusals and made nothing. Best effort:
// what cannot be removed is logged.
func (s *Service) dropHalfCreated(ctx context.Context, m *peers.Member, kind, id string, cause error) {
	if !errors.Is(cause, peers.ErrUnavailable) && !errors.Is(cause, context.DeadlineExceeded) && !errors.Is(cause, context.Canceled) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout())
	defer cancel()
	opts := peers.ListOptions{Metadata: map[string]string{peers.MetaID: id, peers.MetaBrokerID: s.BrokerID}}
	var peerIDs []string
	var err error
	switch kind {
	case KindNetwork:
		var ns []peers.Network
		ns, err = m.Cloud.ListNetworks(ctx, opts)
		for _, n := range ns {
			peerIDs = append(peerIDs, n.ID)
		}
	case KindSubnet:
		var sns []peers.Subnet
		sns, err = m.Cloud.ListSubnets(ctx, opts)
		for _, sn := range sns {
			peerIDs = append(peerIDs, sn.ID)
		}
	case KindPort:
		var ps []peers.Port
		ps, err = m.Cloud.ListPorts(ctx, opts)
		for _, p := range ps {
			peerIDs = append(peerIDs, p.ID)
		}
	}
	log := s.Log.WithFields(logrus.Fields{"kind": kind, "id": id, "peer": m.Peer.Name})
	if err != nil {
		log.WithError(err).Warn("could not check the peer for a half-made resource; it may keep an orphan")
		return
	}
	del := map[string]func(context.Context, string) error{KindNetwork: m.Cloud.DeleteNetwork, KindSubnet: m.Cloud.DeleteSubnet, KindPort: m.Cloud.DeletePort}[kind]
	for _, pid := range peerIDs {
		if err := del(ctx, pid); err != nil && !errors.Is(err, peers.ErrNotFound) {
			log.WithError(err).WithField("peer_resource", pid).Error("could not remove a half-made resource; the peer keeps an orphan")
			continue
		}
		log.WithField("peer_resource", pid).Info("removed a resource the peer made for a create that failed")
	}
}

// CreateNetwork places a network (policy.Placer, Kind "network"; one zone
// hint pins the peer, several allow any of them), creates it on the best
// allowed peer, falling back to the next when a peer is out of capacity or
// unavailable, and indexes it under a new broker ID.
func (s *Service) CreateNetwork(ctx context.Context, project string, req NetworkCreate) (Network, error) {
	members := s.Pool.Members()
	candidates, disconnected := peers.Candidates(members)
	for _, z := range req.ZoneHints {
		if !peers.Named(members, z) {
			return Network{}, &Error{Status: 404, Type: "AvailabilityZoneNotFound", Message: fmt.Sprintf("AvailabilityZone %s could not be found.", z), Err: ErrNotFound}
		}
	}
	preq := policy.Request{Kind: KindNetwork, Project: project}
	if len(req.ZoneHints) == 1 {
		preq.AvailabilityZone = req.ZoneHints[0]
	}
	decision, err := s.Placer.Place(ctx, preq, candidates)
	if err != nil {
		return Network{}, err
	}
	id := uuid.NewString()
	res, err := s.reserve(ctx, project, KindNetwork, id)
	if err != nil {
		return Network{}, err
	}
	defer s.release(ctx, res)
	spec := peers.NetworkSpec{Name: req.Name, Project: project, Shared: req.Shared, External: req.External, MTU: req.MTU, Metadata: s.meta(project, id, req.Marks)}
	var tried []string
	for _, p := range decision.Allowed() {
		if len(req.ZoneHints) > 1 && !slices.Contains(req.ZoneHints, p.Name) {
			continue
		}
		m, ok := s.member(p.ID)
		if !ok {
			continue
		}
		n, err := m.Cloud.CreateNetwork(ctx, spec)
		if errors.Is(err, peers.ErrCapacity) || errors.Is(err, peers.ErrUnavailable) {
			s.dropHalfCreated(ctx, m, KindNetwork, id, err)
			s.Log.WithError(err).WithFields(logrus.Fields{"network": id, "peer": p.Name}).Warn("network create: peer refused; trying the next")
			tried = append(tried, fmt.Sprintf("%s: %s", p.Name, faults.Reason(err)))
			continue
		}
		if errors.Is(err, peers.ErrInvalid) {
			return Network{}, invalidInput("%s", peerMessage(err, nil))
		}
		if err != nil {
			return Network{}, err
		}
		now := time.Now().UTC()
		// A shared (or external) network marks its entry: every replica's
		// watch then knows its peer holds one, which other projects' lists
		// must read.
		e := index.Entry{Kind: KindNetwork, ID: id, Project: project, PeerID: p.ID, PeerResourceID: n.ID, Name: n.Name, CreatedAt: now, Shared: req.Shared || req.External}
		var a *Attrs
		if req.Description != "" || (req.AdminStateUp != nil && !*req.AdminStateUp) || len(req.ZoneHints) > 0 {
			a = &Attrs{Description: req.Description, AdminStateUp: req.AdminStateUp, ZoneHints: slices.Clone(req.ZoneHints)}
		}
		if err := s.record(ctx, e, a, func(ctx context.Context) error { return m.Cloud.DeleteNetwork(ctx, n.ID) }, res); err != nil {
			return Network{}, err
		}
		s.Log.WithFields(logrus.Fields{"network": id, "peer": p.Name, "project": project}).Info("network created")
		out := Network{Ref: Ref{Kind: KindNetwork, ID: id, Project: project, Member: m, PeerResourceID: n.ID, CreatedAt: now}, Peer: n}
		if a != nil {
			out.Attrs = *a
		}
		return out, nil
	}
	why := decision.Explain()
	if len(tried) > 0 {
		why = strings.Join(tried, "; ") + "; " + why
	}
	for _, name := range disconnected {
		why += "; " + name + ": not connected"
	}
	return Network{}, &Error{Status: 503, Type: "NoPeerAvailable", Message: "No peer can hold the network: " + why, Err: ErrNoPeer}
}

// ownedRef resolves a resource project must own to change (action is the
// Neutron policy rule named when it only may see it).
func (s *Service) ownedRef(ctx context.Context, project, kind, id, action string) (Ref, error) {
	ref, err := s.Resolve(ctx, project, kind, id)
	if err != nil {
		return Ref{}, err
	}
	if !ref.OwnedBy(project) {
		return Ref{}, forbidden(action)
	}
	return ref, nil
}

// Attachable says whether project may put ports (and so addresses) on
// the network net (from Resolve): one it owns or a shared one, as
// Neutron's tenancy check does. A network visible only for being external
// is not: its addresses are the cloud's public ones, handed out by routers
// as floating IPs (Nova refuses to attach servers to it too:
// ExternalNetworkAttachForbidden). The refusal is Neutron's 404, hiding
// the network from the create.
func (s *Service) Attachable(ctx context.Context, project string, net Ref) error {
	if net.OwnedBy(project) {
		return nil
	}
	pn, err := net.Member.Cloud.GetNetwork(ctx, net.PeerResourceID)
	switch {
	case errors.Is(err, peers.ErrNotFound):
		return notFound(KindNetwork, net.ID)
	case err != nil:
		return err
	case !pn.Shared:
		return &Error{Status: 404, Type: "HTTPNotFound", Message: "The resource could not be found.", Err: ErrNotFound}
	}
	return nil
}

// validateSubnet checks a subnet request field by field, as Neutron does,
// and returns the parsed prefix.
func validateSubnet(req SubnetCreate) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(req.CIDR)
	if err != nil {
		return p, badInput("cidr", fmt.Sprintf("'%s' is not a valid IP subnet", req.CIDR))
	}
	if m := p.Masked(); m != p {
		return p, badInput("cidr", fmt.Sprintf("'%s' isn't a recognized IP subnet cidr, '%s' is recommended", req.CIDR, m))
	}
	version := 4
	if p.Addr().Is6() {
		version = 6
	}
	switch req.IPVersion {
	case 0, version:
	case 4, 6:
		return p, invalidInput("Cidr %s does not match ip_version %d", req.CIDR, req.IPVersion)
	default:
		return p, badInput("ip_version", fmt.Sprintf("%d is not in [4, 6]", req.IPVersion))
	}
	if req.GatewayIP != "" {
		gw, err := netip.ParseAddr(req.GatewayIP)
		if err != nil {
			return p, badInput("gateway_ip", fmt.Sprintf("'%s' is not a valid IP address", req.GatewayIP))
		}
		if gw.Is4() != p.Addr().Is4() {
			return p, invalidInput("gateway_ip %s does not match the IP version of cidr %s", gw, p)
		}
		if gw == p.Addr() {
			return p, invalidInput("Gateway ip %s conflicts with allocation pool %s", gw, p)
		}
	}
	for _, ns := range req.DNSNameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			return p, badInput("dns_nameservers", fmt.Sprintf("'%s' is not a valid nameserver", ns))
		}
	}
	for _, r := range req.AllocationPools {
		a, err1 := netip.ParseAddr(r.Start)
		b, err2 := netip.ParseAddr(r.End)
		if err1 != nil || err2 != nil || !p.Contains(a) || !p.Contains(b) || b.Less(a) {
			return p, &Error{Status: 400, Type: "InvalidAllocationPool", Message: fmt.Sprintf("The allocation pool %s-%s spans beyond the subnet cidr %s.", r.Start, r.End, p), Err: ErrInvalid}
		}
	}
	return p, nil
}

// CreateSubnet adds a subnet to a network of project, on the network's
// peer. A CIDR overlapping another subnet of the network is Neutron's
// InvalidInput. Custom allocation pools are honoured only when they are
// the pools the peer derives (the peers contract takes none): anything
// else is refused rather than silently ignored.
func (s *Service) CreateSubnet(ctx context.Context, project string, req SubnetCreate) (Subnet, error) {
	prefix, err := validateSubnet(req)
	if err != nil {
		return Subnet{}, err
	}
	net, err := s.ownedRef(ctx, project, KindNetwork, req.NetworkID, "create_subnet")
	if err != nil {
		return Subnet{}, err
	}
	c := net.Member.Cloud
	pn, err := c.GetNetwork(ctx, net.PeerResourceID)
	if err != nil {
		return Subnet{}, err
	}
	for _, sid := range pn.Subnets {
		if other, err := c.GetSubnet(ctx, sid); err == nil {
			if op, err := netip.ParsePrefix(other.CIDR); err == nil && op.Overlaps(prefix) {
				return Subnet{}, invalidInput("Requested subnet with cidr: %s for network: %s overlaps with another subnet", prefix, net.ID)
			}
		}
	}
	id := uuid.NewString()
	res, err := s.reserve(ctx, project, KindSubnet, id)
	if err != nil {
		return Subnet{}, err
	}
	defer s.release(ctx, res)
	sn, err := c.CreateSubnet(ctx, peers.SubnetSpec{
		Name: req.Name, Project: project, NetworkID: net.PeerResourceID, CIDR: prefix.String(), IPVersion: req.IPVersion,
		GatewayIP: req.GatewayIP, NoGateway: req.NoGateway, EnableDHCP: req.EnableDHCP,
		DNSNameservers: slices.Clone(req.DNSNameservers), Metadata: s.meta(project, id, req.Marks),
	})
	switch {
	case errors.Is(err, peers.ErrInvalid):
		return Subnet{}, invalidInput("%s", peerMessage(err, map[string]string{net.PeerResourceID: net.ID}))
	case errors.Is(err, peers.ErrNotFound):
		return Subnet{}, notFound(KindNetwork, req.NetworkID)
	case err != nil:
		s.dropHalfCreated(ctx, net.Member, KindSubnet, id, err)
		return Subnet{}, err
	}
	undo := func(ctx context.Context) error { return c.DeleteSubnet(ctx, sn.ID) }
	if len(req.AllocationPools) > 0 && !samePools(req.AllocationPools, sn.AllocationPools) {
		if err := undo(context.WithoutCancel(ctx)); err != nil {
			// Unindexed, the subnet is listed nowhere yet holds its CIDR on
			// the network: an operator must know to remove it.
			s.Log.WithError(err).WithFields(logrus.Fields{"network": net.ID, "peer": net.Member.Peer.Name, "peer_subnet": sn.ID}).
				Error("could not remove a subnet refused for its allocation pools; the peer keeps an orphan")
		}
		return Subnet{}, &Error{Status: 400, Type: "InvalidAllocationPool", Err: ErrInvalid,
			Message: fmt.Sprintf("The allocation pools %s are not supported: this cloud allocates %s for cidr %s and gateway %s", poolString(req.AllocationPools), poolString(sn.AllocationPools), sn.CIDR, orNone(sn.GatewayIP))}
	}
	now := time.Now().UTC()
	e := index.Entry{Kind: KindSubnet, ID: id, Project: project, PeerID: net.Member.Peer.ID, PeerResourceID: sn.ID, Name: sn.Name, CreatedAt: now}
	var a *Attrs
	if req.Description != "" {
		a = &Attrs{Description: req.Description}
	}
	if err := s.record(ctx, e, a, undo, res); err != nil {
		return Subnet{}, err
	}
	s.Log.WithFields(logrus.Fields{"subnet": id, "network": net.ID, "cidr": sn.CIDR, "project": project}).Info("subnet created")
	out := Subnet{Ref: Ref{Kind: KindSubnet, ID: id, Project: project, Member: net.Member, PeerResourceID: sn.ID, CreatedAt: now}, Peer: sn, NetworkID: net.ID}
	if a != nil {
		out.Attrs = *a
	}
	return out, nil
}

// peerMessage is a peer's refusal as a user reads it: without the
// sentinel's text, and with the peer's IDs replaced by the broker's.
func peerMessage(err error, brokerIDs map[string]string) string {
	msg := strings.TrimSuffix(err.Error(), ": "+peers.ErrInvalid.Error())
	for peerID, id := range brokerIDs {
		msg = strings.ReplaceAll(msg, peerID, id)
	}
	return msg
}

func samePools(a, b []peers.IPRange) bool {
	return slices.EqualFunc(a, b, func(x, y peers.IPRange) bool {
		xs, e1 := netip.ParseAddr(x.Start)
		xe, e2 := netip.ParseAddr(x.End)
		ys, e3 := netip.ParseAddr(y.Start)
		ye, e4 := netip.ParseAddr(y.End)
		return errors.Join(e1, e2, e3, e4) == nil && xs == ys && xe == ye
	})
}

func poolString(rs []peers.IPRange) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.Start+"-"+r.End)
	}
	return strings.Join(parts, ",")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// CreatePort creates a port of project on a network it may see (its own or
// a shared one), on the network's peer. FixedIPs name subnets by broker ID.
func (s *Service) CreatePort(ctx context.Context, project string, req PortCreate) (Port, error) {
	net, err := s.Resolve(ctx, project, KindNetwork, req.NetworkID)
	if err != nil {
		return Port{}, err
	}
	if err := s.Attachable(ctx, project, net); err != nil {
		return Port{}, err
	}
	if err := s.checkGroups(ctx, project, req.SecurityGroups); err != nil {
		return Port{}, err
	}
	groups, err := s.PrepareGroups(ctx, project, net.Member, req.SecurityGroups)
	if err != nil {
		return Port{}, err
	}
	c := net.Member.Cloud
	fixed := make([]peers.FixedIP, len(req.FixedIPs))
	for i, f := range req.FixedIPs {
		if f.IPAddress != "" {
			if _, err := netip.ParseAddr(f.IPAddress); err != nil {
				return Port{}, badInput("fixed_ips", fmt.Sprintf("'%s' is not a valid IP address", f.IPAddress))
			}
		}
		fixed[i].IPAddress = f.IPAddress
		if f.SubnetID == "" {
			continue
		}
		sref, err := s.Resolve(ctx, project, KindSubnet, f.SubnetID)
		if err == nil && sref.Member.Peer.ID == net.Member.Peer.ID {
			var sn peers.Subnet
			if sn, err = c.GetSubnet(ctx, sref.PeerResourceID); err == nil && sn.NetworkID == net.PeerResourceID {
				fixed[i].SubnetID = sref.PeerResourceID
				continue
			}
		}
		if err != nil && !errors.Is(err, peers.ErrNotFound) {
			return Port{}, err
		}
		return Port{}, invalidInput("Failed to create port on network %s, because fixed_ips included invalid subnet %s.", req.NetworkID, f.SubnetID)
	}
	if len(fixed) == 0 {
		fixed = nil
	}
	id := uuid.NewString()
	res, err := s.reserve(ctx, project, KindPort, id)
	if err != nil {
		return Port{}, err
	}
	defer s.release(ctx, res)
	p, err := c.CreatePort(ctx, peers.PortSpec{Name: req.Name, Project: project, NetworkID: net.PeerResourceID, FixedIPs: fixed, Metadata: s.meta(project, id, req.Marks), SecurityGroups: groups})
	switch {
	case errors.Is(err, peers.ErrCapacity):
		return Port{}, inUse("IpAddressGenerationFailure", "No more IP addresses available on network %s.", req.NetworkID)
	case errors.Is(err, peers.ErrConflict) && len(req.FixedIPs) > 0:
		return Port{}, inUse("IpAddressAlreadyAllocated", "IP address %s already allocated on network %s.", fixedString(req.FixedIPs), req.NetworkID)
	case errors.Is(err, peers.ErrInvalid):
		ids := map[string]string{net.PeerResourceID: net.ID}
		for i, f := range fixed {
			if f.SubnetID != "" {
				ids[f.SubnetID] = req.FixedIPs[i].SubnetID
			}
		}
		return Port{}, invalidInput("%s", peerMessage(err, ids))
	case errors.Is(err, peers.ErrNotFound):
		return Port{}, notFound(KindNetwork, req.NetworkID)
	case err != nil:
		s.dropHalfCreated(ctx, net.Member, KindPort, id, err)
		return Port{}, err
	}
	now := time.Now().UTC()
	e := index.Entry{Kind: KindPort, ID: id, Project: project, PeerID: net.Member.Peer.ID, PeerResourceID: p.ID, Name: p.Name, CreatedAt: now}
	var a *Attrs
	if req.Description != "" || (req.AdminStateUp != nil && !*req.AdminStateUp) || req.SecurityGroups != nil {
		a = &Attrs{Description: req.Description, AdminStateUp: req.AdminStateUp, SecurityGroups: slices.Clone(req.SecurityGroups)}
		if a.SecurityGroups == nil && req.SecurityGroups != nil {
			a.SecurityGroups = []string{} // explicitly none
		}
	}
	if err := s.record(ctx, e, a, func(ctx context.Context) error { return c.DeletePort(ctx, p.ID) }, res); err != nil {
		return Port{}, err
	}
	s.Log.WithFields(logrus.Fields{"port": id, "network": net.ID, "project": project}).Info("port created")
	// The peer answered with its own subnet IDs: show the broker's.
	got, err := s.GetPort(ctx, project, id)
	if err != nil {
		out := Port{Ref: Ref{Kind: KindPort, ID: id, Project: project, Member: net.Member, PeerResourceID: p.ID, CreatedAt: now}, Peer: p, NetworkID: net.ID}
		if a != nil {
			out.Attrs = *a
		}
		return out, nil
	}
	return got, nil
}

func fixedString(fs []peers.FixedIP) string {
	var parts []string
	for _, f := range fs {
		if f.IPAddress != "" {
			parts = append(parts, f.IPAddress)
		}
	}
	return strings.Join(parts, ",")
}

// DeleteNetwork deletes a network of project and its subnets. A network
// with ports is Neutron's 409 NetworkInUse.
func (s *Service) DeleteNetwork(ctx context.Context, project, id string) error {
	ref, err := s.ownedRef(ctx, project, KindNetwork, id, "delete_network")
	if err != nil {
		return err
	}
	c := ref.Member.Cloud
	// The subnets go with the network: find their index entries first.
	var subnetEntries []index.Entry
	pn, err := c.GetNetwork(ctx, ref.PeerResourceID)
	switch {
	case err == nil && len(pn.Subnets) > 0:
		subs, err := c.ListSubnets(ctx, peers.ListOptions{})
		if err != nil {
			return err
		}
		for _, sn := range subs {
			if !slices.Contains(pn.Subnets, sn.ID) || sn.Metadata[peers.MetaBrokerID] != s.BrokerID {
				continue
			}
			if e, err := s.Index.Get(ctx, KindSubnet, sn.Metadata[peers.MetaID], ""); err == nil {
				subnetEntries = append(subnetEntries, e)
			}
		}
	case errors.Is(err, peers.ErrNotFound):
		// A delete retried after the peer's part: the subnets are gone
		// with the network, only their entries are left to find.
		if subnetEntries, err = s.goneSubnets(ctx, project, ref.Member); err != nil {
			return err
		}
	}
	err = s.deleteAfterLeavingServers(ctx, ref.Member, onNetwork(ref.PeerResourceID), func(ctx context.Context) error {
		return c.DeleteNetwork(ctx, ref.PeerResourceID)
	})
	switch {
	case errors.Is(err, peers.ErrConflict):
		return inUse("NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network.", id)
	case err != nil && !errors.Is(err, peers.ErrNotFound):
		return err
	}
	// The network's entry goes last: while it stays, a retried delete
	// finds the network and, through it, the subnets still indexed.
	var errs []error
	for _, e := range subnetEntries {
		errs = append(errs, s.forget(ctx, e))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network %s is deleted but its subnets are still indexed (delete it again): %w", id, err)
	}
	if err := s.forget(ctx, ref.entry()); err != nil {
		return err
	}
	s.Log.WithFields(logrus.Fields{"network": id, "project": project}).Info("network deleted")
	return nil
}

// goneSubnets returns the index entries of project's subnets on member
// that the peer no longer has: the project's entries on that peer, from
// the index's primary entries (an earlier cut delete may have removed the
// project's copy only; index.Delete removes the two one after the other).
func (s *Service) goneSubnets(ctx context.Context, project string, member *peers.Member) ([]index.Entry, error) {
	entries, err := s.Index.OnPeer(ctx, KindSubnet, project, member.Peer.ID)
	if err != nil {
		return nil, err
	}
	var gone []index.Entry
	for _, e := range entries {
		switch _, err := member.Cloud.GetSubnet(ctx, e.PeerResourceID); {
		case errors.Is(err, peers.ErrNotFound):
			gone = append(gone, e)
		case err != nil:
			return nil, err
		}
	}
	return gone, nil
}

// DeleteSubnet deletes a subnet of project; one a port has an address on
// is Neutron's 409 SubnetInUse.
func (s *Service) DeleteSubnet(ctx context.Context, project, id string) error {
	return s.deleteOwned(ctx, project, KindSubnet, id, "SubnetInUse",
		"Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.")
}

// DeletePort deletes a port of project; one a server uses is 409
// PortInUse (delete the server, or detach it, first).
func (s *Service) DeletePort(ctx context.Context, project, id string) error {
	if ref, err := s.Resolve(ctx, project, KindPort, id); err == nil && ref.gatewayPort {
		return gatewayPortInUse(id)
	}
	return s.deleteOwned(ctx, project, KindPort, id, "PortInUse",
		"Unable to complete operation on port %s. The port has an attached device; delete the server first.")
}

// deleteOwned deletes a subnet or port project owns from its peer, then
// forgets it. The peer's conflict is Neutron's 409 of type inUseType
// (inUseMsg formats the ID); a resource already gone from its peer is
// only forgotten, so a delete cut short before the index is retried.
func (s *Service) deleteOwned(ctx context.Context, project, kind, id, inUseType, inUseMsg string) error {
	ref, err := s.ownedRef(ctx, project, kind, id, "delete_"+kind)
	if err != nil {
		return err
	}
	c := ref.Member.Cloud
	if kind == KindSubnet {
		err = s.deleteAfterLeavingServers(ctx, ref.Member, onSubnet(ref.PeerResourceID), func(ctx context.Context) error {
			return c.DeleteSubnet(ctx, ref.PeerResourceID)
		})
	} else {
		err = c.DeletePort(ctx, ref.PeerResourceID)
	}
	switch {
	case errors.Is(err, peers.ErrConflict):
		return inUse(inUseType, inUseMsg, id)
	case err != nil && !errors.Is(err, peers.ErrNotFound):
		return err
	}
	return s.forget(ctx, ref.entry())
}

// update changes the broker-kept attributes of a resource project owns.
func (s *Service) update(ctx context.Context, project, kind, id string, u Update) error {
	ref, err := s.ownedRef(ctx, project, kind, id, "update_"+kind)
	if err != nil {
		return err
	}
	if u.SecurityGroups != nil {
		if err := s.checkGroups(ctx, project, *u.SecurityGroups); err != nil {
			return err
		}
		// The peer first: a port's groups shown are the ones it enforces.
		if err := s.applyPort(ctx, project, ref.Member, ref.PeerResourceID, append([]string{}, *u.SecurityGroups...)); err != nil {
			return err
		}
	}
	_, err = s.changeAttrs(ctx, kind, id, func(a *Attrs) {
		if u.Name != nil {
			a.Name = u.Name
		}
		if u.Description != nil {
			a.Description = *u.Description
		}
		if u.AdminStateUp != nil {
			a.AdminStateUp = u.AdminStateUp
		}
		if u.SecurityGroups != nil {
			a.SecurityGroups = append([]string{}, *u.SecurityGroups...)
		}
	})
	return err
}

// checkGroups makes sure every group ID names a group of the project, in
// the Store (one key each): memory may still hold a group another replica
// just deleted, which a port must not name.
func (s *Service) checkGroups(ctx context.Context, project string, ids []string) error {
	for _, id := range ids {
		if _, _, err := s.loadGroup(ctx, project, id); err != nil {
			return err
		}
	}
	return nil
}

// UpdateNetwork renames a network, or changes its description or
// administrative state.
func (s *Service) UpdateNetwork(ctx context.Context, project, id string, u Update) (Network, error) {
	u.SecurityGroups = nil
	if err := s.update(ctx, project, KindNetwork, id, u); err != nil {
		return Network{}, err
	}
	return s.GetNetwork(ctx, project, id)
}

// UpdateSubnet renames a subnet or changes its description.
func (s *Service) UpdateSubnet(ctx context.Context, project, id string, u Update) (Subnet, error) {
	u.AdminStateUp, u.SecurityGroups = nil, nil
	if err := s.update(ctx, project, KindSubnet, id, u); err != nil {
		return Subnet{}, err
	}
	return s.GetSubnet(ctx, project, id)
}

// UpdatePort renames a port, or changes its description or administrative
// state.
func (s *Service) UpdatePort(ctx context.Context, project, id string, u Update) (Port, error) {
	if err := s.update(ctx, project, KindPort, id, u); err != nil {
		return Port{}, err
	}
	return s.GetPort(ctx, project, id)
}
