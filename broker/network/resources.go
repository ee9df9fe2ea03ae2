package network

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
)

// Network is a network as a project sees it: where it lives (Ref), what
// its peer reports, and the broker IDs it refers to.
type Network struct {
	Ref  Ref
	Peer peers.Network
	// SubnetIDs are the broker IDs of its subnets.
	SubnetIDs []string
	Attrs     Attrs
}

// Subnet is a subnet as a project sees it.
type Subnet struct {
	Ref       Ref
	Peer      peers.Subnet
	NetworkID string // broker ID
	Attrs     Attrs
}

// Port is a port as a project sees it.
type Port struct {
	Ref       Ref
	Peer      peers.Port
	NetworkID string          // broker ID
	FixedIPs  []peers.FixedIP // with broker subnet IDs
	// DeviceID is the broker ID of the server bound to it, if any.
	DeviceID string
	// Attrs.SecurityGroups of a port a peer made for a server are its
	// server's groups unless the port has its own (ownGroups).
	Attrs     Attrs
	ownGroups bool
}

// Name is the name shown: a rename kept by the broker wins over the peer's.
func (a Attrs) name(peer string) string {
	if a.Name != nil {
		return *a.Name
	}
	return peer
}

// AdminUp is the administrative state shown (up unless set down).
func (a Attrs) adminUp() bool { return a.AdminStateUp == nil || *a.AdminStateUp }

// peerState is what one peer holds, read for a list or a show.
type peerState struct {
	m       *peers.Member
	nets    []peers.Network
	subnets []peers.Subnet
	ports   []peers.Port
}

// Visible is everything a project may see on the peers that answered.
type Visible struct {
	Networks []Network
	Subnets  []Subnet
	Ports    []Port
	// Failed names the peers that did not answer in time.
	Failed []string
}

// readPeers lists networks and subnets (and ports when asked) on members
// in parallel, each under the per-peer deadline, and keeps what it learns
// of the peers' own networks (natives).
func (s *Service) readPeers(ctx context.Context, members []*peers.Member, withPorts bool) ([]peerState, []string) {
	res := peers.Gather(ctx, members, s.timeout(), func(ctx context.Context, m *peers.Member) (peerState, error) {
		st := peerState{m: m}
		var err error
		if st.nets, err = m.Cloud.ListNetworks(ctx, peers.ListOptions{}); err != nil {
			return st, err
		}
		if st.subnets, err = m.Cloud.ListSubnets(ctx, peers.ListOptions{}); err != nil {
			return st, err
		}
		// A full read of its networks: what the peer's own are now, even
		// if its ports do not answer (a peer whose port list always times
		// out would otherwise keep a stale shared flag forever, and lists
		// skip the peers not flagged).
		s.natives.observe(m.Peer.ID, s.BrokerID, st.nets, st.subnets)
		if withPorts {
			st.ports, err = m.Cloud.ListPorts(ctx, peers.ListOptions{})
		}
		return st, err
	})
	var out []peerState
	var failed []string
	for _, r := range res {
		if r.Err != nil {
			failed = append(failed, r.Member.Peer.Name)
			s.natives.failed(r.Member.Peer.ID, time.Now())
			s.Log.WithError(r.Err).WithField("peer", r.Member.Peer.Name).Warn("network list: peer did not answer")
			continue
		}
		out = append(out, r.Value)
	}
	slices.Sort(failed)
	return out, failed
}

// ownEntries are a project's index entries of the kinds a read shows, by
// kind and then by peer ID "/" peer resource ID.
type ownEntries map[string]map[string]index.Entry

// deviceID is what a port's device_id shows: the broker ID of the
// server or router using it, a router the peer made under its name-based
// broker ID, and nothing for a device the broker does not know (a peer's
// DHCP agent, say): never the peer's own ID.
func deviceID(own ownEntries, peerID string, p peers.Port) string {
	if p.DeviceID == "" {
		return ""
	}
	if e, ok := own[kindServer][peerID+"/"+p.DeviceID]; ok {
		return e.ID
	}
	if e, ok := own[KindRouter][peerID+"/"+p.DeviceID]; ok {
		return e.ID
	}
	if strings.HasPrefix(p.DeviceOwner, "network:router_") {
		return NativeID(peerID, KindRouter, p.DeviceID)
	}
	return ""
}

// ownedBy reads project's entries (every project's for "") of the kinds
// a read shows from the index (memory): networks and subnets, and with
// ports the ports, the servers (whose ports their peer made) and those
// ports' entries.
func (s *Service) ownedBy(ctx context.Context, project string, withPorts bool) (ownEntries, error) {
	own := ownEntries{}
	kinds := []string{KindNetwork, KindSubnet}
	if withPorts {
		kinds = append(kinds, KindPort, kindServer, kindServerPort, KindRouter, kindRouterPort)
	}
	for _, kind := range kinds {
		entries, err := s.Index.List(ctx, kind, project)
		if err != nil {
			return nil, err
		}
		own[kind] = map[string]index.Entry{}
		for _, e := range entries {
			own[kind][e.PeerID+"/"+e.PeerResourceID] = e
		}
	}
	return own, nil
}

// visible applies the visibility rules (see Resolve) to what the peers
// hold and translates peer IDs to broker IDs. Own resources must be in the
// index (a peer resource carrying our metadata but not indexed is an
// unfinished create or an orphan, and stays hidden).
func (s *Service) visible(ctx context.Context, project string, states []peerState, withPorts bool) (Visible, error) {
	own, err := s.ownedBy(ctx, project, withPorts)
	if err != nil {
		return Visible{}, err
	}
	return s.visibleOwn(ctx, project, own, states)
}

// attrsLookup returns the Attrs of a resource by kind and broker ID: from
// memory when AttrsMemory runs, each ID costing itself; without it, every
// Attrs of the three kinds is read from the Store once, up front.
func (s *Service) attrsLookup(ctx context.Context) (func(kind, id string) Attrs, error) {
	if mem := s.AttrsMemory; mem != nil && mem.Loaded() {
		return func(kind, id string) Attrs {
			r, err := mem.Get(ctx, attrsKey(kind, id), false) // in memory: no error but a miss
			if err != nil {
				return Attrs{}
			}
			return r.Value
		}, nil
	}
	all := map[string]map[string]Attrs{}
	for _, kind := range []string{KindNetwork, KindSubnet, KindPort, kindServer} {
		a, err := s.loadAttrs(ctx, kind)
		if err != nil {
			return nil, err
		}
		all[kind] = a
	}
	return func(kind, id string) Attrs { return all[kind][id] }, nil
}

// visibleOwn is visible with project's entries already read.
func (s *Service) visibleOwn(ctx context.Context, project string, own ownEntries, states []peerState) (Visible, error) {
	attrsOf, err := s.attrsLookup(ctx)
	if err != nil {
		return Visible{}, err
	}
	var v Visible
	var adopt []index.Entry // server ports shown before they were indexed
	admin := cloudAdmin(ctx)
	for _, st := range states {
		peerID := st.m.Peer.ID
		// ref decides whether a resource is visible and under which ID.
		ref := func(kind, peerResID, peerProject string, meta map[string]string, shared bool) (Ref, bool) {
			ours := meta[peers.MetaBrokerID] == s.BrokerID && meta[peers.MetaID] != ""
			if e, ok := own[kind][peerID+"/"+peerResID]; ok {
				return Ref{Kind: kind, ID: e.ID, Project: e.Project, Member: st.m, PeerResourceID: peerResID, CreatedAt: e.CreatedAt}, true
			}
			switch {
			case !shared || kind == KindPort:
				return Ref{}, false
			case ours:
				return Ref{Kind: kind, ID: meta[peers.MetaID], Project: meta[peers.MetaProject], Member: st.m, PeerResourceID: peerResID}, true
			default:
				return Ref{Kind: kind, ID: NativeID(peerID, kind, peerResID), Project: peerProject, Member: st.m, PeerResourceID: peerResID, Native: true}, true
			}
		}
		// Broker IDs of everything on the peer, visible or not: a visible
		// port may sit on a shared network of another project.
		ids := map[string]string{}
		idOf := func(kind, peerResID string, meta map[string]string) string {
			if e, ok := own[kind][peerID+"/"+peerResID]; ok {
				return e.ID
			}
			if meta[peers.MetaBrokerID] == s.BrokerID && meta[peers.MetaID] != "" {
				return meta[peers.MetaID]
			}
			return NativeID(peerID, kind, peerResID)
		}
		netShared := map[string]bool{}
		for _, n := range st.nets {
			ids[n.ID] = idOf(KindNetwork, n.ID, n.Metadata)
			netShared[n.ID] = n.Shared || n.External
		}
		for _, sn := range st.subnets {
			ids[sn.ID] = idOf(KindSubnet, sn.ID, sn.Metadata)
		}
		for _, n := range st.nets {
			r, ok := ref(KindNetwork, n.ID, n.Project, n.Metadata, netShared[n.ID])
			if !ok {
				continue
			}
			out := Network{Ref: r, Peer: n, Attrs: attrsOf(KindNetwork, r.ID)}
			for _, sid := range n.Subnets {
				out.SubnetIDs = append(out.SubnetIDs, ids[sid])
			}
			v.Networks = append(v.Networks, out)
		}
		for _, sn := range st.subnets {
			r, ok := ref(KindSubnet, sn.ID, sn.Project, sn.Metadata, netShared[sn.NetworkID])
			if !ok {
				continue
			}
			v.Subnets = append(v.Subnets, Subnet{Ref: r, Peer: sn, NetworkID: ids[sn.NetworkID], Attrs: attrsOf(KindSubnet, r.ID)})
		}
		for _, p := range st.ports {
			r, ok := ref(KindPort, p.ID, p.Project, p.Metadata, false)
			ours := p.Metadata[peers.MetaBrokerID] == s.BrokerID
			if se, bound := own[kindServer][peerID+"/"+p.DeviceID]; !ok && !ours && bound && p.DeviceID != "" {
				// A port the peer made for one of the project's servers
				// (Nova's networks: [{uuid}]): the project's, under its
				// broker ID, as Neutron lists a server's ports.
				e, indexed := own[kindServerPort][peerID+"/"+p.ID]
				if !indexed {
					e = serverPortEntry(peerID, p, se)
					adopt = append(adopt, e)
				}
				r, ok = Ref{Kind: KindPort, ID: e.ID, Project: project, Member: st.m, PeerResourceID: p.ID, CreatedAt: e.CreatedAt, serverPort: true}, true
			}
			if re, bound := own[KindRouter][peerID+"/"+p.DeviceID]; !ok && !ours && bound && p.DeviceOwner == peers.OwnerRouterInterface {
				// A port the peer made for an interface of one of the
				// project's routers (by subnet): the project's, as
				// Neutron makes it in the router's project.
				e, indexed := own[kindRouterPort][peerID+"/"+p.ID]
				if !indexed {
					e = routerPortEntry(peerID, p.ID, re)
					adopt = append(adopt, e)
				}
				r, ok = Ref{Kind: KindPort, ID: e.ID, Project: e.Project, Member: st.m, PeerResourceID: p.ID, CreatedAt: e.CreatedAt, routerPort: true}, true
			}
			if re, bound := own[KindRouter][peerID+"/"+p.DeviceID]; !ok && !ours && bound && p.DeviceOwner == peers.OwnerRouterGateway && admin {
				r, ok = gatewayPortRef(st.m, p, re), true // in no project, as Neutron makes it
			}
			if !ok {
				continue
			}
			out := Port{Ref: r, Peer: p, NetworkID: ids[p.NetworkID], DeviceID: p.DeviceID, Attrs: attrsOf(KindPort, r.ID)}
			if (r.routerPort || r.gatewayPort) && out.Attrs.SecurityGroups == nil {
				out.Attrs.SecurityGroups = []string{} // a router's port is in no group, as in Neutron
			}
			out.ownGroups = out.Attrs.SecurityGroups != nil
			if se, ok := own[kindServer][peerID+"/"+p.DeviceID]; ok && r.serverPort && !out.ownGroups {
				out.Attrs.SecurityGroups = attrsOf(kindServer, se.ID).SecurityGroups
			}
			for _, f := range p.FixedIPs {
				out.FixedIPs = append(out.FixedIPs, peers.FixedIP{SubnetID: ids[f.SubnetID], IPAddress: f.IPAddress})
			}
			out.DeviceID = deviceID(own, peerID, p)
			v.Ports = append(v.Ports, out)
		}
	}
	s.adopt(ctx, adopt)
	slices.SortFunc(v.Networks, func(a, b Network) int { return cmp.Compare(a.Ref.ID, b.Ref.ID) })
	slices.SortFunc(v.Subnets, func(a, b Subnet) int { return cmp.Compare(a.Ref.ID, b.Ref.ID) })
	slices.SortFunc(v.Ports, func(a, b Port) int { return cmp.Compare(a.Ref.ID, b.Ref.ID) })
	return v, nil
}

// List returns everything project may see, by broker ID; ports only when
// withPorts (they cost another call per peer). It reads only the peers
// that may hold any of it (see listPeers); an admin's list of every
// project (project "") reads every peer. Peers that do not answer within
// the per-peer deadline are named in Visible.Failed and their resources
// left out; so are the disconnected ones among them.
func (s *Service) List(ctx context.Context, project string, withPorts bool) (Visible, error) {
	own, err := s.ownedBy(ctx, project, withPorts)
	if err != nil {
		return Visible{}, err
	}
	wanted, err := s.listPeers(ctx, project, own)
	if err != nil {
		return Visible{}, err
	}
	var members []*peers.Member
	var disconnected []string
	for _, m := range s.Pool.Members() {
		switch {
		case wanted != nil && !wanted[m.Peer.ID]:
		case m.Cloud != nil:
			members = append(members, m)
		default:
			disconnected = append(disconnected, m.Peer.Name)
		}
	}
	states, failed := s.readPeers(ctx, members, withPorts)
	v, err := s.visibleOwn(ctx, project, own, states)
	if err != nil {
		return Visible{}, err
	}
	v.Failed = append(failed, disconnected...)
	slices.Sort(v.Failed)
	return v, nil
}

// listPeers returns the IDs of the peers a list for project must read,
// from memory; nil (every peer) for project "". They are the peers of
// project's own entries (own), the peers holding shared or external
// networks (their own, as the last discovery found them, and those a
// broker made shared, from the index, so a new one counts on every
// replica at once), and the peers never read yet, which may hold either.
func (s *Service) listPeers(ctx context.Context, project string, own ownEntries) (map[string]bool, error) {
	if project == "" {
		return nil, nil
	}
	wanted := map[string]bool{}
	for _, entries := range own {
		for _, e := range entries {
			wanted[e.PeerID] = true
		}
	}
	for _, id := range s.natives.sharedPeers() {
		wanted[id] = true
	}
	shared, err := s.Index.Shared(ctx, KindNetwork)
	if err != nil {
		return nil, err
	}
	for _, e := range shared {
		wanted[e.PeerID] = true
	}
	for _, m := range s.natives.unread(s.Pool.Members(), time.Time{}) {
		wanted[m.Peer.ID] = true
	}
	return wanted, nil
}

// one reads the peer of ref and returns what project sees there.
func (s *Service) one(ctx context.Context, project string, ref Ref) (Visible, error) {
	states, failed := s.readPeers(ctx, []*peers.Member{ref.Member}, ref.Kind == KindPort)
	if len(failed) > 0 {
		return Visible{}, errUnavailable(ref)
	}
	return s.visible(ctx, project, states, ref.Kind == KindPort)
}

func errUnavailable(ref Ref) error {
	var peer string
	if ref.Member != nil {
		peer = ref.Member.Peer.Name
	}
	// The peer's name is for the log, under the request ID.
	return faults.AtPeer(peer, &Error{Status: 503, Type: "ServiceUnavailable", Message: "the peer holding " + ref.Kind + " " + ref.ID + " did not answer", Err: peers.ErrUnavailable})
}

// GetNetwork returns a network project may see.
func (s *Service) GetNetwork(ctx context.Context, project, id string) (Network, error) {
	return get(ctx, s, project, KindNetwork, id, func(v Visible) []Network { return v.Networks }, func(n Network) Ref { return n.Ref })
}

// GetSubnet returns a subnet project may see.
func (s *Service) GetSubnet(ctx context.Context, project, id string) (Subnet, error) {
	return get(ctx, s, project, KindSubnet, id, func(v Visible) []Subnet { return v.Subnets }, func(sn Subnet) Ref { return sn.Ref })
}

// GetPort returns a port of project.
func (s *Service) GetPort(ctx context.Context, project, id string) (Port, error) {
	return get(ctx, s, project, KindPort, id, func(v Visible) []Port { return v.Ports }, func(p Port) Ref { return p.Ref })
}

// get resolves id and picks the resource out of what its peer shows
// project: Resolve says where it is and that project may see it, the read
// of its peer gives it with every broker ID translated.
func get[T any](ctx context.Context, s *Service, project, kind, id string, items func(Visible) []T, ref func(T) Ref) (T, error) {
	var zero T
	r, err := s.Resolve(ctx, project, kind, id)
	if err != nil {
		return zero, err
	}
	v, err := s.one(ctx, project, r)
	if err != nil {
		return zero, err
	}
	for _, it := range items(v) {
		if ref(it).ID == r.ID {
			return it, nil
		}
	}
	return zero, notFound(kind, id)
}

// epoch stands for the creation time of a peer's own resources, which the
// peers do not report.
var epoch = time.Unix(0, 0).UTC()
