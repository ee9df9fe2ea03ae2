package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// Index kinds of the resources this package routes.
const (
	KindNetwork = "network"
	KindSubnet  = "subnet"
	KindPort    = "port"
	// Broker-level records, not indexed (they live in the Store only).
	kindSecurityGroup     = "security_group"
	kindSecurityGroupRule = "security_group_rule"
	// kindServer is the compute API's index kind; ports name their server
	// (device_id) by its broker ID.
	kindServer = "server"
)

// Pool is the part of peers.Pool the service uses.
type Pool interface {
	Members() []*peers.Member
	Get(id string) (*peers.Member, bool)
}

// Store is the part of registry.Store the service uses: broker-level
// attributes the peers cannot hold (descriptions, renames) and security
// groups.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	DeleteCAS(ctx context.Context, key string, index uint64) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error)
}

var _ Store = registry.Store(nil)

// Service routes networks, subnets and ports across the peers and keeps
// the broker's security groups. It is safe for concurrent use; all state is
// in the peers, the index and the Store, but for what it learns of the
// peers' own networks (Run keeps that fresh in the background).
type Service struct {
	Pool  Pool
	Index *index.Index
	Store Store
	// AttrsMemory, when set (and running), serves the broker-kept
	// attributes from memory; without it lists read the Store.
	AttrsMemory *AttrsMemory
	// GroupsMemory, when set (and running), serves the security groups
	// from memory; without it their lists read the Store.
	GroupsMemory *GroupsMemory
	Placer       policy.Placer
	// Quota, when set, counts what projects create against their quotas;
	// without it nothing is limited.
	Quota Quota
	Log   logrus.FieldLogger
	// BrokerID marks every resource this installation creates on a peer.
	BrokerID string
	// PeerTimeout bounds each peer's part of a fan-out; default 10s.
	PeerTimeout time.Duration
	// DiscoveryInterval is how often Run reads the peers' own networks;
	// default DefaultDiscoveryInterval.
	DiscoveryInterval time.Duration

	natives natives
	// missedPorts are the server ports (entry IDs) the last discovery's
	// full list of their peer lacked: a second miss in a row forgets one.
	missedMu    sync.Mutex
	missedPorts map[string]bool
}

// Ref says where a network resource lives and who owns it, as the broker
// sees it.
type Ref struct {
	Kind string
	// ID is the broker-wide ID: the index's, or NativeID's for a native
	// resource or a port a peer made for a server.
	ID string
	// Project owns the resource: the broker project that created it, or
	// for a native resource whatever project the peer names.
	Project string
	// Member is the peer holding it (connected).
	Member *peers.Member
	// PeerResourceID is the peer's ID for it.
	PeerResourceID string
	// Native resources are a peer's own shared or external networks and
	// their subnets: not indexed, visible to every project, read-only.
	Native bool
	// CreatedAt is when the broker created it (zero for native ones).
	CreatedAt time.Time
	// serverPort: a port a peer made for a server, indexed as
	// kindServerPort.
	serverPort bool
	// routerPort: a port a peer made for a router's interface on a
	// subnet, indexed as kindRouterPort.
	routerPort bool
	// gatewayPort: a router's gateway port, shown to cloud admins alone
	// (routerports.go).
	gatewayPort bool
}

// entry is the index entry Ref stands for.
func (r Ref) entry() index.Entry {
	kind := r.Kind
	switch {
	case r.serverPort:
		kind = kindServerPort
	case r.routerPort:
		kind = kindRouterPort
	}
	return index.Entry{Kind: kind, ID: r.ID, Project: r.Project, PeerID: r.Member.Peer.ID, PeerResourceID: r.PeerResourceID}
}

// OwnedBy reports whether project may change the resource (not only see
// it): it created it.
func (r Ref) OwnedBy(project string) bool { return !r.Native && r.Project == project }

func (s *Service) timeout() time.Duration {
	if s.PeerTimeout > 0 {
		return s.PeerTimeout
	}
	return 10 * time.Second
}

// Resolve finds the resource of kind ("network", "subnet" or "port") that
// id names for project, by the rules every API follows:
//
//   - an indexed resource of the project;
//   - an indexed network of another project that is shared (or external),
//     and subnets of such a network;
//   - a peer's own shared or external network, and subnets of such
//     networks, by their broker ID (NativeID), found in memory (see Run);
//   - a port a peer made for a server of the project (Nova's
//     networks: [{uuid}]), or for an interface of a router of the
//     project, by its broker ID (NativeID), in the index: it is the
//     project's.
//
// A peer's own ID is never accepted: it is unknown like any other ID.
// Anything else, ports of other projects included, is ErrNotFound (a
// *Error with Neutron's NetworkNotFound/SubnetNotFound/PortNotFound), so
// nobody learns of others' IDs. A peer that is not connected is
// peers.ErrUnavailable. The compute API resolves `networks: [{uuid}]` and
// `{port}` with it; Ref.Member and Ref.PeerResourceID are what to hand the
// peer.
func (s *Service) Resolve(ctx context.Context, project, kind, id string) (Ref, error) {
	if kind != KindNetwork && kind != KindSubnet && kind != KindPort {
		return Ref{}, fmt.Errorf("resolve: unknown kind %q: %w", kind, ErrInvalid)
	}
	e, err := s.Index.Get(ctx, kind, id, "")
	switch {
	case errors.Is(err, index.ErrNotFound):
		if kind == KindPort {
			return s.resolveServerPort(ctx, project, id)
		}
		return s.resolveNative(ctx, kind, id)
	case err != nil:
		return Ref{}, err
	}
	if e.Project != project && kind == KindPort {
		return Ref{}, notFound(kind, id)
	}
	m, ok := s.Pool.Get(e.PeerID)
	if !ok || m.Cloud == nil {
		if e.Project != project {
			return Ref{}, notFound(kind, id) // cannot tell whether it is shared: hide it
		}
		return Ref{}, fmt.Errorf("the peer holding %s %s is not connected: %w", kind, id, peers.ErrUnavailable)
	}
	ref := Ref{Kind: kind, ID: e.ID, Project: e.Project, Member: m, PeerResourceID: e.PeerResourceID, CreatedAt: e.CreatedAt}
	if e.Project == project {
		return ref, nil
	}
	// Whatever went wrong asking, the answer to another project is "not
	// found": a 503 here would confirm its private resource exists.
	if shared, err := sharedOnPeer(ctx, m.Cloud, kind, e.PeerResourceID); err != nil || !shared {
		if err != nil && !errors.Is(err, peers.ErrNotFound) {
			s.Log.WithError(err).WithFields(logrus.Fields{"kind": kind, "id": id, "peer": m.Peer.Name}).Warn("could not tell whether another project's resource is shared")
		}
		return Ref{}, notFound(kind, id)
	}
	return ref, nil
}

// sharedOnPeer reports whether a peer's network (or a subnet's network) is
// shared or external, which makes it visible to every project.
func sharedOnPeer(ctx context.Context, c peers.Networks, kind, peerID string) (bool, error) {
	if kind == KindSubnet {
		sn, err := c.GetSubnet(ctx, peerID)
		if err != nil {
			return false, err
		}
		peerID = sn.NetworkID
	}
	n, err := c.GetNetwork(ctx, peerID)
	if err != nil {
		return false, err
	}
	return n.Shared || n.External, nil
}

// connected returns the pool members with a live cloud.
func (s *Service) connected() []*peers.Member {
	var out []*peers.Member
	for _, m := range s.Pool.Members() {
		if m.Cloud != nil {
			out = append(out, m)
		}
	}
	return out
}

// member returns the connected member with ID id.
func (s *Service) member(id string) (*peers.Member, bool) {
	m, ok := s.Pool.Get(id)
	return m, ok && m.Cloud != nil
}

// Attrs are the attributes the broker keeps for a resource because a peer
// cannot: a description, a rename, the administrative state, the zone
// hints asked for, and a revision. Stored only once one differs from the
// default.
type Attrs struct {
	Name         *string  `json:"name,omitempty"`
	Description  string   `json:"description,omitempty"`
	AdminStateUp *bool    `json:"admin_state_up,omitempty"`
	ZoneHints    []string `json:"availability_zone_hints,omitempty"`
	// SecurityGroups of a port; nil means the project's default group.
	SecurityGroups []string  `json:"security_groups,omitempty"`
	Revision       int       `json:"revision_number"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func attrsKey(kind, id string) string { return attrsRoot + kind + "/" + id }

// loadAttrs returns every stored Attrs of a kind, by broker ID.
func (s *Service) loadAttrs(ctx context.Context, kind string) (map[string]Attrs, error) {
	rs, err := s.attrRecords().List(ctx, kind)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Attrs, len(rs))
	for _, r := range rs {
		out[r.ID] = r.Value
	}
	return out, nil
}

// changeAttrs applies change to a resource's Attrs with compare-and-swap,
// bumping its revision, and retries a lost race.
func (s *Service) changeAttrs(ctx context.Context, kind, id string, change func(*Attrs)) (Attrs, error) {
	for {
		var a Attrs
		var at uint64
		kv, err := s.Store.Get(ctx, attrsKey(kind, id))
		switch {
		case err == nil:
			if err := json.Unmarshal(kv.Value, &a); err != nil {
				return Attrs{}, fmt.Errorf("decode %s: %w", kv.Key, err)
			}
			at = kv.ModifyIndex
		case !errors.Is(err, registry.ErrNotFound):
			return Attrs{}, err
		default:
			a.Revision = 1
		}
		change(&a)
		a.Revision++
		a.UpdatedAt = time.Now().UTC()
		raw, err := json.Marshal(a)
		if err != nil {
			return Attrs{}, err
		}
		written, err := s.Store.CAS(ctx, attrsKey(kind, id), raw, at)
		if errors.Is(err, registry.ErrConflict) {
			continue
		}
		if err == nil {
			s.attrRecords().Wrote(attrsKey(kind, id), registry.Keyed[Attrs]{ID: id, Value: a}, written)
		}
		return a, err
	}
}
