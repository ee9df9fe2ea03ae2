package network

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// Routers and floating IPs live on one peer each (peers.Routers): a
// router on the peer of its external network (or, without a gateway, the
// peer placement picks among those that can route), a floating IP on its
// external network's. They are indexed (kinds "router" and "floatingip",
// the project's alone) under broker IDs, and their quota is charged as
// any indexed resource's. Everything they name is resolved as the
// project sees it (Resolve) and must be on their peer: a router joins
// subnets of its own peer only, a floating IP maps onto ports of its own
// peer only (Neutron's 400 otherwise, saying so). External networks are
// always a peer's own (the broker makes none), so their IDs, and their
// subnets', are NativeID's.

// Index kinds of routers and floating IPs.
const (
	KindRouter     = "router"
	KindFloatingIP = "floatingip"
)

// Router is a router of a project.
type Router struct {
	Ref   Ref
	Peer  peers.Router
	Attrs Attrs
}

// GatewayRequest is a router's external_gateway_info as asked: broker IDs.
// EnableSNAT and FixedIPs are a cloud admin's to set (Neutron's policy):
// a member leaves them nil (SNAT on, addresses the peer's choice).
type GatewayRequest struct {
	NetworkID  string
	EnableSNAT *bool
	FixedIPs   []peers.FixedIP // broker subnet IDs and/or addresses; non-nil when asked for, even empty
}

// RouterCreate is a new router.
type RouterCreate struct {
	Name         string
	Description  string
	AdminStateUp *bool
	Gateway      *GatewayRequest
	ZoneHints    []string
}

// RouterUpdate changes a router; nil fields stay. ClearGateway is
// Neutron's external_gateway_info {} (or null).
type RouterUpdate struct {
	Name         *string
	Description  *string
	Gateway      *GatewayRequest
	ClearGateway bool
	Routes       *[]peers.Route
}

// routing is the peer's router API, or Neutron's 400 saying it has none.
func routing(ctx context.Context, m *peers.Member) (peers.Routers, error) {
	rt, ok := m.Cloud.(peers.Routers)
	if !ok {
		return nil, &Error{Status: 400, Type: "BadRequest", Err: ErrInvalid,
			Message: fmt.Sprintf("Availability zone %s offers no routers or floating IPs.", m.Peer.Name)}
	}
	if err := rt.RoutersAvailable(ctx); err != nil {
		if errors.Is(err, peers.ErrNotSupported) {
			return nil, &Error{Status: 400, Type: "BadRequest", Err: ErrInvalid,
				Message: fmt.Sprintf("Availability zone %s offers no routers or floating IPs: it cannot route.", m.Peer.Name)}
		}
		return nil, err
	}
	return rt, nil
}

// otherPeer is the refusal to join resources of two peers.
func otherPeer(what string, a, b *peers.Member) error {
	return &Error{Status: 400, Type: "BadRequest", Err: ErrInvalid, Message: fmt.Sprintf(
		"%s is in availability zone %s and the router or floating IP in %s: each peer routes only its own networks.", what, a.Peer.Name, b.Peer.Name)}
}

// externalNetwork resolves the external network a gateway or a floating
// IP is on.
func (s *Service) externalNetwork(ctx context.Context, project, id, what string) (Ref, error) {
	ref, err := s.Resolve(ctx, project, KindNetwork, id)
	if err != nil {
		return Ref{}, err
	}
	n, err := ref.Member.Cloud.GetNetwork(ctx, ref.PeerResourceID)
	if err != nil {
		return Ref{}, err
	}
	if !n.External {
		return Ref{}, &Error{Status: 400, Type: "BadRequest", Err: ErrInvalid,
			Message: fmt.Sprintf("Bad %s request: Network %s is not a valid external network.", what, id)}
	}
	return ref, nil
}

// adminOnly refuses what Neutron's policy keeps for admins (rule names
// the policy, as Neutron's 403 does) unless ctx carries a cloud admin's
// token. It is checked here, not in a front end, so every API (Neutron,
// EC2, a future Heat) is held to it; a caller without a token (an
// internal one) is refused too.
func adminOnly(ctx context.Context, rule string) error {
	if t, ok := identity.TokenFrom(ctx); ok && t.CloudAdmin() {
		return nil
	}
	return forbidden(rule)
}

// gatewayPolicy holds a member to Neutron's defaults for a router's
// gateway: choosing its addresses (external_fixed_ips) and setting SNAT
// (enable_snat, even to its default) are admin_only; naming the network
// is the owner's. op is "create_router" or "update_router".
func gatewayPolicy(ctx context.Context, op string, g *GatewayRequest) error {
	if g == nil {
		return nil
	}
	if g.FixedIPs != nil {
		if err := adminOnly(ctx, op+":external_gateway_info:external_fixed_ips"); err != nil {
			return err
		}
	}
	if g.EnableSNAT != nil {
		return adminOnly(ctx, op+":external_gateway_info:enable_snat")
	}
	return nil
}

// gatewaySpec turns a gateway request into the peer's terms, on member m.
func (s *Service) gatewaySpec(ctx context.Context, project string, g *GatewayRequest, m *peers.Member) (*peers.RouterGateway, *peers.Member, error) {
	net, err := s.externalNetwork(ctx, project, g.NetworkID, "router")
	if err != nil {
		return nil, nil, err
	}
	if m != nil && net.Member.Peer.ID != m.Peer.ID {
		return nil, nil, otherPeer("External network "+g.NetworkID, net.Member, m)
	}
	out := &peers.RouterGateway{NetworkID: net.PeerResourceID, EnableSNAT: g.EnableSNAT == nil || *g.EnableSNAT}
	for _, f := range g.FixedIPs {
		pf := peers.FixedIP{IPAddress: f.IPAddress}
		if f.SubnetID != "" {
			sn, err := s.Resolve(ctx, project, KindSubnet, f.SubnetID)
			if err != nil {
				return nil, nil, err
			}
			pf.SubnetID = sn.PeerResourceID
		}
		out.FixedIPs = append(out.FixedIPs, pf)
	}
	return out, net.Member, nil
}

// CreateRouter creates a router on its gateway's peer, or where a zone
// hint or placement says.
func (s *Service) CreateRouter(ctx context.Context, project string, req RouterCreate) (Router, error) {
	if err := gatewayPolicy(ctx, "create_router", req.Gateway); err != nil {
		return Router{}, err
	}
	var gw *peers.RouterGateway
	var m *peers.Member
	if req.Gateway != nil {
		var err error
		if gw, m, err = s.gatewaySpec(ctx, project, req.Gateway, nil); err != nil {
			return Router{}, err
		}
	}
	if m == nil {
		var err error
		if m, err = s.placeRouter(ctx, project, req.ZoneHints); err != nil {
			return Router{}, err
		}
	} else if len(req.ZoneHints) > 0 && !slices.Contains(req.ZoneHints, m.Peer.Name) {
		return Router{}, invalidInput("the external gateway's network is in availability zone %s, not among the hints", m.Peer.Name)
	}
	rt, err := routing(ctx, m)
	if err != nil {
		return Router{}, err
	}
	id := uuid.NewString()
	res, err := s.reserve(ctx, project, KindRouter, id)
	if err != nil {
		return Router{}, err
	}
	defer s.release(ctx, res)
	pr, err := rt.CreateRouter(ctx, peers.RouterSpec{Name: req.Name, Project: project, Gateway: gw, Metadata: s.meta(project, id, nil)})
	if err != nil {
		s.dropHalfCreated(ctx, m, KindRouter, id, err)
		return Router{}, s.peerRefusal(err)
	}
	now := time.Now().UTC()
	e := index.Entry{Kind: KindRouter, ID: id, Project: project, PeerID: m.Peer.ID, PeerResourceID: pr.ID, Name: pr.Name, CreatedAt: now}
	var a *Attrs
	if req.Description != "" || (req.AdminStateUp != nil && !*req.AdminStateUp) || len(req.ZoneHints) > 0 {
		a = &Attrs{Description: req.Description, AdminStateUp: req.AdminStateUp, ZoneHints: slices.Clone(req.ZoneHints)}
	}
	if err := s.record(ctx, e, a, func(ctx context.Context) error { return rt.DeleteRouter(ctx, pr.ID) }, res); err != nil {
		return Router{}, err
	}
	s.Log.WithFields(logrus.Fields{"router": id, "peer": m.Peer.Name, "project": project}).Info("router created")
	out := Router{Ref: Ref{Kind: KindRouter, ID: id, Project: project, Member: m, PeerResourceID: pr.ID, CreatedAt: now}, Peer: pr}
	if a != nil {
		out.Attrs = *a
	}
	return out, nil
}

// placeRouter picks the peer of a router without a gateway: among the
// connected peers that can route (and the zone hints), placement's best.
func (s *Service) placeRouter(ctx context.Context, project string, hints []string) (*peers.Member, error) {
	members := s.Pool.Members()
	for _, z := range hints {
		if !peers.Named(members, z) {
			return nil, &Error{Status: 404, Type: "AvailabilityZoneNotFound", Message: fmt.Sprintf("AvailabilityZone %s could not be found.", z), Err: ErrNotFound}
		}
	}
	candidates, _ := peers.Candidates(members)
	var why []string
	candidates = slices.DeleteFunc(candidates, func(p registry.Peer) bool {
		m, ok := s.member(p.ID)
		if !ok || len(hints) > 0 && !slices.Contains(hints, p.Name) {
			return true
		}
		if _, err := routing(ctx, m); err != nil {
			why = append(why, p.Name+": cannot route")
			return true
		}
		return false
	})
	if len(candidates) == 0 {
		return nil, &Error{Status: 503, Type: "NoPeerAvailable", Err: ErrNoPeer,
			Message: "No peer can hold the router: " + strings.Join(append(why, "no connected peer left"), "; ")}
	}
	preq := policy.Request{Kind: KindRouter, Project: project}
	if len(hints) == 1 {
		preq.AvailabilityZone = hints[0]
	}
	decision, err := s.Placer.Place(ctx, preq, candidates)
	if err != nil {
		return nil, err
	}
	for _, p := range decision.Allowed() {
		if m, ok := s.member(p.ID); ok {
			return m, nil
		}
	}
	return nil, &Error{Status: 503, Type: "NoPeerAvailable", Message: "No peer can hold the router: " + decision.Explain(), Err: ErrNoPeer}
}

// peerRefusal turns a peer's refusal into Neutron's error, in the
// peer's words with its IDs left out.
func (s *Service) peerRefusal(err error) error {
	switch {
	case errors.Is(err, peers.ErrInvalid):
		return &Error{Status: 400, Type: "BadRequest", Message: peerMessage(err, nil), Err: ErrInvalid}
	case errors.Is(err, peers.ErrConflict):
		return &Error{Status: 409, Type: "Conflict", Message: peerMessage(err, nil), Err: ErrInUse}
	}
	return err
}

// ownEntry finds a resource of kind of project in the index (memory), with its
// connected peer.
func (s *Service) ownEntry(ctx context.Context, project, kind, id string) (index.Entry, *peers.Member, error) {
	e, err := s.Index.Get(ctx, kind, id, "")
	if errors.Is(err, index.ErrNotFound) || err == nil && e.Project != project {
		return index.Entry{}, nil, notFound(kind, id)
	}
	if err != nil {
		return index.Entry{}, nil, err
	}
	m, ok := s.member(e.PeerID)
	if !ok {
		return index.Entry{}, nil, errUnavailable(Ref{Kind: kind, ID: id})
	}
	return e, m, nil
}

func refOf(e index.Entry, m *peers.Member) Ref {
	return Ref{Kind: e.Kind, ID: e.ID, Project: e.Project, Member: m, PeerResourceID: e.PeerResourceID, CreatedAt: e.CreatedAt}
}

// GetRouter returns a router of project.
func (s *Service) GetRouter(ctx context.Context, project, id string) (Router, error) {
	e, m, err := s.ownEntry(ctx, project, KindRouter, id)
	if err != nil {
		return Router{}, err
	}
	rt, ok := m.Cloud.(peers.Routers)
	if !ok {
		return Router{}, notFound(KindRouter, id)
	}
	pr, err := rt.GetRouter(ctx, e.PeerResourceID)
	if errors.Is(err, peers.ErrNotFound) {
		return Router{}, notFound(KindRouter, id)
	}
	if err != nil {
		return Router{}, err
	}
	a, err := s.attrsOf(ctx, KindRouter, id)
	if err != nil {
		return Router{}, err
	}
	return Router{Ref: refOf(e, m), Peer: pr, Attrs: a}, nil
}

// attrsOf reads one resource's broker-kept attributes.
func (s *Service) attrsOf(ctx context.Context, kind, id string) (Attrs, error) {
	lookup, err := s.attrsLookup(ctx)
	if err != nil {
		return Attrs{}, err
	}
	return lookup(kind, id), nil
}

// indexedOnPeers lists project's entries of kind (from memory) and asks
// each of their peers once for its resources of this broker, in
// parallel; list reads one peer. Peers that do not answer are named.
func indexedOnPeers[T any](ctx context.Context, s *Service, project, kind string, list func(ctx context.Context, m *peers.Member, o peers.ListOptions) ([]T, error), peerID func(T) string) (map[string]T, []index.Entry, []string, error) {
	entries, err := s.Index.List(ctx, kind, project)
	if err != nil {
		return nil, nil, nil, err
	}
	var members []*peers.Member
	var failed []string
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.PeerID] {
			continue
		}
		seen[e.PeerID] = true
		if m, ok := s.member(e.PeerID); ok {
			members = append(members, m)
		} else if m, ok := s.Pool.Get(e.PeerID); ok {
			failed = append(failed, m.Peer.Name)
		}
	}
	meta := map[string]string{peers.MetaBrokerID: s.BrokerID}
	if project != "" {
		meta[peers.MetaProject] = project
	}
	res := peers.Gather(ctx, members, s.timeout(), func(ctx context.Context, m *peers.Member) ([]T, error) {
		return list(ctx, m, peers.ListOptions{Metadata: meta})
	})
	found := map[string]T{}
	for _, r := range res {
		if r.Err != nil {
			failed = append(failed, r.Member.Peer.Name)
			continue
		}
		for _, it := range r.Value {
			found[r.Member.Peer.ID+"/"+peerID(it)] = it
		}
	}
	return found, entries, failed, nil
}

// ListRouters returns project's routers (every project's for ""), and the
// peers that did not answer.
func (s *Service) ListRouters(ctx context.Context, project string) ([]Router, []string, error) {
	found, entries, failed, err := indexedOnPeers(ctx, s, project, KindRouter, func(ctx context.Context, m *peers.Member, o peers.ListOptions) ([]peers.Router, error) {
		rt, ok := m.Cloud.(peers.Routers)
		if !ok {
			return nil, nil
		}
		return rt.ListRouters(ctx, o)
	}, func(r peers.Router) string { return r.ID })
	if err != nil {
		return nil, nil, err
	}
	lookup, err := s.attrsLookup(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []Router
	for _, e := range entries {
		pr, ok := found[e.PeerID+"/"+e.PeerResourceID]
		if !ok {
			continue
		}
		m, _ := s.member(e.PeerID)
		out = append(out, Router{Ref: refOf(e, m), Peer: pr, Attrs: lookup(KindRouter, e.ID)})
	}
	return out, failed, nil
}

// UpdateRouter renames a router, changes its description, its gateway or
// its routes (their next hops are checked by its peer).
func (s *Service) UpdateRouter(ctx context.Context, project, id string, u RouterUpdate) (Router, error) {
	e, m, err := s.ownEntry(ctx, project, KindRouter, id)
	if err != nil {
		return Router{}, err
	}
	if err := gatewayPolicy(ctx, "update_router", u.Gateway); err != nil {
		return Router{}, err
	}
	rt, err := routing(ctx, m)
	if err != nil {
		return Router{}, err
	}
	patch := peers.RouterPatch{Name: u.Name, ClearGateway: u.ClearGateway, Routes: u.Routes}
	if u.Routes != nil {
		for i, r := range *u.Routes {
			if err := r.Check(); err != nil {
				return Router{}, invalidInput("Invalid input for routes: route %d (%s via %s) is not a destination CIDR and a next hop of its family.", i, r.Destination, r.NextHop)
			}
		}
	}
	if u.Gateway != nil {
		if patch.Gateway, _, err = s.gatewaySpec(ctx, project, u.Gateway, m); err != nil {
			return Router{}, err
		}
	}
	if u.Name != nil || u.Gateway != nil || u.ClearGateway || u.Routes != nil {
		if _, err := rt.UpdateRouter(ctx, e.PeerResourceID, patch); err != nil {
			return Router{}, s.peerRefusal(err)
		}
	}
	if u.Description != nil {
		if _, err := s.changeAttrs(ctx, KindRouter, id, func(a *Attrs) { a.Description = *u.Description }); err != nil {
			return Router{}, err
		}
	}
	return s.GetRouter(ctx, project, id)
}

// DeleteRouter deletes a router without interfaces (Neutron's 409
// RouterInUse otherwise).
func (s *Service) DeleteRouter(ctx context.Context, project, id string) error {
	e, m, err := s.ownEntry(ctx, project, KindRouter, id)
	if err != nil {
		return err
	}
	rt, ok := m.Cloud.(peers.Routers)
	if !ok {
		return notFound(KindRouter, id)
	}
	err = rt.DeleteRouter(ctx, e.PeerResourceID)
	if errors.Is(err, peers.ErrConflict) {
		return inUse("RouterInUse", "Router %s still has ports", id)
	}
	if err != nil && !errors.Is(err, peers.ErrNotFound) {
		return err
	}
	s.Log.WithFields(logrus.Fields{"router": id, "project": project}).Info("router deleted")
	return s.forget(ctx, e)
}

// RouterInterface is Neutron's answer to add/remove_router_interface.
type RouterInterface struct {
	RouterID, Project, SubnetID, PortID, NetworkID string
}

// AddRouterInterface joins a router to a subnet of its peer, by subnet or
// by port (broker IDs of the project's own).
func (s *Service) AddRouterInterface(ctx context.Context, project, id, subnetID, portID string) (RouterInterface, error) {
	if (subnetID == "") == (portID == "") {
		return RouterInterface{}, badInput("router interface", "Bad router request: Either subnet_id or port_id must be specified.")
	}
	e, m, err := s.ownEntry(ctx, project, KindRouter, id)
	if err != nil {
		return RouterInterface{}, err
	}
	rt, err := routing(ctx, m)
	if err != nil {
		return RouterInterface{}, err
	}
	in, err := s.peerInterface(ctx, project, m, subnetID, portID)
	if err != nil {
		return RouterInterface{}, err
	}
	var res *quota.Reservation
	if portID == "" {
		// By subnet the peer makes a port, the project's (Neutron counts
		// it); by port the project's port is counted already.
		if res, err = s.reserveAmounts(ctx, project, quota.Amounts{quota.Ports: 1}, "port of router "+id+"'s interface"); err != nil {
			return RouterInterface{}, err
		}
		defer s.release(ctx, res)
	}
	got, err := rt.AddRouterInterface(ctx, e.PeerResourceID, in)
	if err != nil {
		return RouterInterface{}, s.peerRefusal(err)
	}
	if portID == "" && got.PortID != "" {
		// The port the peer made: the project's to list, and to count.
		if err := s.recordRouterPort(ctx, rt, e, got.PortID, in.SubnetID, res); err != nil {
			return RouterInterface{}, err
		}
	}
	return s.interfaceView(ctx, project, e, m, got, subnetID, portID), nil
}

// peerInterface resolves a subnet or port the project owns, on m. As in
// Neutron, a subnet of another project's shared network (or a peer's
// own) is a cloud admin's to join to a router, a member's 400 naming
// it; a port on one is the project's own, as any port it made.
func (s *Service) peerInterface(ctx context.Context, project string, m *peers.Member, subnetID, portID string) (peers.RouterInterface, error) {
	kind, id := KindSubnet, subnetID
	if portID != "" {
		kind, id = KindPort, portID
	}
	ref, err := s.Resolve(ctx, project, kind, id)
	if err != nil {
		return peers.RouterInterface{}, err
	}
	if !ref.OwnedBy(project) {
		if kind == KindPort {
			return peers.RouterInterface{}, forbidden("add_router_interface")
		}
		if adminOnly(ctx, "add_router_interface") != nil {
			return peers.RouterInterface{}, &Error{Status: 400, Type: "BadRequest", Err: ErrInvalid, Message: fmt.Sprintf(
				"Bad router request: Cannot add interface to router because subnet %s is not owned by project making the request.", id)}
		}
	}
	if ref.Member.Peer.ID != m.Peer.ID {
		return peers.RouterInterface{}, otherPeer(strings.ToUpper(kind[:1])+kind[1:]+" "+id, ref.Member, m)
	}
	if kind == KindPort {
		return peers.RouterInterface{PortID: ref.PeerResourceID}, nil
	}
	return peers.RouterInterface{SubnetID: ref.PeerResourceID}, nil
}

// interfaceView translates a peer's interface answer to broker IDs: the
// subnet and its network as asked or found, the port as the project's
// (an interface made from a subnet has a port only the router owns, shown
// under NativeID).
func (s *Service) interfaceView(ctx context.Context, project string, e index.Entry, m *peers.Member, got peers.RouterInterface, subnetID, portID string) RouterInterface {
	out := RouterInterface{RouterID: e.ID, Project: project, SubnetID: subnetID, PortID: portID}
	if out.PortID == "" {
		out.PortID = s.brokerPortID(ctx, project, m.Peer.ID, got.PortID)
	}
	if out.SubnetID == "" {
		out.SubnetID = s.brokerID(ctx, project, KindSubnet, m.Peer.ID, got.SubnetID)
	}
	out.NetworkID = s.brokerID(ctx, project, KindNetwork, m.Peer.ID, got.NetworkID)
	return out
}

// brokerID is the broker ID of a peer's network or subnet as project
// sees it: an indexed one's (its own, or one of a shared network's
// project: the projects of the shared networks on the peer, from
// memory), else NativeID.
func (s *Service) brokerID(ctx context.Context, project, kind, peerID, peerResID string) string {
	if peerResID == "" {
		return ""
	}
	projects := []string{project}
	if shared, err := s.Index.Shared(ctx, KindNetwork); err == nil {
		for _, e := range shared {
			if e.PeerID == peerID && !slices.Contains(projects, e.Project) {
				projects = append(projects, e.Project)
			}
		}
	}
	for _, p := range projects {
		if es, err := s.Index.OnPeer(ctx, kind, p, peerID); err == nil {
			for _, e := range es {
				if e.PeerResourceID == peerResID {
					return e.ID
				}
			}
		}
	}
	return NativeID(peerID, kind, peerResID)
}

// brokerPortID is brokerID for a port: the project's own, or a server's
// (NativeID either way when not indexed).
func (s *Service) brokerPortID(ctx context.Context, project, peerID, peerPortID string) string {
	if peerPortID == "" {
		return ""
	}
	if es, err := s.Index.OnPeer(ctx, KindPort, project, peerID); err == nil {
		for _, e := range es {
			if e.PeerResourceID == peerPortID {
				return e.ID
			}
		}
	}
	return NativeID(peerID, KindPort, peerPortID)
}

// RemoveRouterInterface undoes an interface, by subnet or by port. A
// port of the project's that was the interface is deleted with it, as
// Neutron deletes it: its entry goes too.
func (s *Service) RemoveRouterInterface(ctx context.Context, project, id, subnetID, portID string) (RouterInterface, error) {
	if subnetID == "" && portID == "" {
		return RouterInterface{}, badInput("router interface", "Bad router request: Either subnet_id or port_id must be specified.")
	}
	e, m, err := s.ownEntry(ctx, project, KindRouter, id)
	if err != nil {
		return RouterInterface{}, err
	}
	rt, ok := m.Cloud.(peers.Routers)
	if !ok {
		return RouterInterface{}, notFound(KindRouter, id)
	}
	var in peers.RouterInterface
	if subnetID != "" {
		ref, err := s.Resolve(ctx, project, KindSubnet, subnetID)
		if err != nil {
			return RouterInterface{}, err
		}
		in.SubnetID = ref.PeerResourceID
	}
	if portID != "" {
		pid, err := s.interfacePort(ctx, project, m, portID)
		if err != nil {
			return RouterInterface{}, err
		}
		in.PortID = pid
	}
	got, err := rt.RemoveRouterInterface(ctx, e.PeerResourceID, in)
	if errors.Is(err, peers.ErrNotFound) {
		return RouterInterface{}, &Error{Status: 404, Type: "RouterInterfaceNotFoundForSubnet", Err: ErrNotFound,
			Message: fmt.Sprintf("Router %s has no interface on subnet %s%s", id, subnetID, portID)}
	}
	if err != nil {
		return RouterInterface{}, s.peerRefusal(err)
	}
	out := s.interfaceView(ctx, project, e, m, got, subnetID, portID)
	s.forgetRouterPort(ctx, project, m.Peer.ID, got.PortID)
	if es, err := s.Index.OnPeer(ctx, KindPort, project, m.Peer.ID); err == nil {
		for _, pe := range es {
			if pe.PeerResourceID == got.PortID {
				if err := s.forget(ctx, pe); err != nil {
					s.Log.WithError(err).WithField("port", pe.ID).Warn("the router interface's port is gone; its entry stays until the next delete")
				}
			}
		}
	}
	return out, nil
}

// interfacePort is the peer's ID of an interface's port the project
// names: its own indexed port, or one a router made from a subnet (shown
// under NativeID).
func (s *Service) interfacePort(ctx context.Context, project string, m *peers.Member, portID string) (string, error) {
	if e, err := s.Index.Get(ctx, KindPort, portID, ""); err == nil && e.Project == project && e.PeerID == m.Peer.ID {
		return e.PeerResourceID, nil
	}
	if e, err := s.Index.Get(ctx, kindRouterPort, portID, project); err == nil && e.PeerID == m.Peer.ID {
		return e.PeerResourceID, nil
	}
	ps, err := m.Cloud.ListPorts(ctx, peers.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, p := range ps {
		if p.DeviceOwner == peers.OwnerRouterInterface && NativeID(m.Peer.ID, KindPort, p.ID) == portID {
			return p.ID, nil
		}
	}
	return "", notFound(KindPort, portID)
}
