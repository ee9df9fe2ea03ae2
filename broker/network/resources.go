package network

import (
	"cmp"
	"context"
	"slices"
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
	Attrs    Attrs
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
		// A full read: what the peer's own networks are now.
		s.natives.observe(r.Member.Peer.ID, s.BrokerID, r.Value.nets, r.Value.subnets)
		out = append(out, r.Value)
	}
	slices.Sort(failed)
	return out, failed
}

// visible applies the visibility rules (see Resolve) to what the peers
// hold and translates peer IDs to broker IDs. Own resources must be in the
// index (a peer resource carrying our metadata but not indexed is an
// unfinished create or an orphan, and stays hidden).
func (s *Service) visible(ctx context.Context, project string, states []peerState, withPorts bool) (Visible, error) {
	own := map[string]map[string]index.Entry{} // kind -> peer ID/peer resource ID -> entry
	kinds := []string{KindNetwork, KindSubnet}
	if withPorts {
		kinds = append(kinds, KindPort, kindServer, kindServerPort)
	}
	for _, kind := range kinds {
		entries, err := s.Index.List(ctx, kind, project)
		if err != nil {
			return Visible{}, err
		}
		own[kind] = map[string]index.Entry{}
		for _, e := range entries {
			own[kind][e.PeerID+"/"+e.PeerResourceID] = e
		}
	}
	attrs := map[string]map[string]Attrs{}
	for _, kind := range []string{KindNetwork, KindSubnet, KindPort} {
		a, err := s.loadAttrs(ctx, kind)
		if err != nil {
			return Visible{}, err
		}
		attrs[kind] = a
	}
	var v Visible
	var adopt []index.Entry // server ports shown before they were indexed
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
			out := Network{Ref: r, Peer: n, Attrs: attrs[KindNetwork][r.ID]}
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
			v.Subnets = append(v.Subnets, Subnet{Ref: r, Peer: sn, NetworkID: ids[sn.NetworkID], Attrs: attrs[KindSubnet][r.ID]})
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
				r, ok = Ref{Kind: KindPort, ID: e.ID, Project: project, Member: st.m, PeerResourceID: p.ID, CreatedAt: e.CreatedAt}, true
			}
			if !ok {
				continue
			}
			out := Port{Ref: r, Peer: p, NetworkID: ids[p.NetworkID], DeviceID: p.DeviceID, Attrs: attrs[KindPort][r.ID]}
			for _, f := range p.FixedIPs {
				out.FixedIPs = append(out.FixedIPs, peers.FixedIP{SubnetID: ids[f.SubnetID], IPAddress: f.IPAddress})
			}
			if e, ok := own[kindServer][peerID+"/"+p.DeviceID]; ok && p.DeviceID != "" {
				out.DeviceID = e.ID
			}
			v.Ports = append(v.Ports, out)
		}
	}
	s.adopt(ctx, adopt)
	slices.SortFunc(v.Networks, func(a, b Network) int { return cmp.Compare(a.Ref.ID, b.Ref.ID) })
	slices.SortFunc(v.Subnets, func(a, b Subnet) int { return cmp.Compare(a.Ref.ID, b.Ref.ID) })
	slices.SortFunc(v.Ports, func(a, b Port) int { return cmp.Compare(a.Ref.ID, b.Ref.ID) })
	return v, nil
}

// List returns everything project may see on every connected peer, by
// broker ID; ports only when withPorts (they cost another call per peer).
// Peers that do not answer within the per-peer deadline are named in
// Visible.Failed and their resources left out; disconnected peers too.
func (s *Service) List(ctx context.Context, project string, withPorts bool) (Visible, error) {
	var members []*peers.Member
	var disconnected []string
	for _, m := range s.Pool.Members() {
		if m.Cloud != nil {
			members = append(members, m)
		} else {
			disconnected = append(disconnected, m.Peer.Name)
		}
	}
	states, failed := s.readPeers(ctx, members, withPorts)
	v, err := s.visible(ctx, project, states, withPorts)
	if err != nil {
		return Visible{}, err
	}
	v.Failed = append(failed, disconnected...)
	slices.Sort(v.Failed)
	return v, nil
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
