package index

import (
	"context"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// held is one resource as its peer lists it: what the index reads of any
// kind.
type held struct {
	peerID string
	name   string
	// meta is its metadata (an image's properties), where the marks are.
	meta map[string]string
	// createdAt is zero for kinds whose peers do not say.
	createdAt time.Time
	// deleted marks a server its peer still lists while it goes.
	deleted bool
}

// peerKind is how the index reads one kind of resource on a peer: the one
// walk Scan (every kind, for the rebuild) and Marked (one kind, for a
// caller's marks) share.
type peerKind struct {
	list func(ctx context.Context, c peers.Cloud, opts peers.ListOptions) ([]held, error)
	// remove deletes a half-made one; nil for images, which are left to
	// the rebuild (their staged copies carry the same marks).
	remove func(c peers.Cloud, ctx context.Context, id string) error
}

// lister adapts a peer's list call of one kind to held resources.
func lister[T any](list func(peers.Cloud, context.Context, peers.ListOptions) ([]T, error), read func(T) held) func(context.Context, peers.Cloud, peers.ListOptions) ([]held, error) {
	return func(ctx context.Context, c peers.Cloud, opts peers.ListOptions) ([]held, error) {
		l, err := list(c, ctx, opts)
		out := make([]held, 0, len(l))
		for _, x := range l {
			out = append(out, read(x))
		}
		return out, err
	}
}

// peerKinds are the kinds the index reads on peers (RebuiltKinds).
var peerKinds = map[string]peerKind{
	"server": {list: lister(peers.Cloud.ListServers, func(x peers.Server) held {
		return held{peerID: x.ID, name: x.Name, meta: x.Metadata, createdAt: x.CreatedAt, deleted: x.Status == peers.ServerDeleted}
	}), remove: peers.Cloud.DeleteServer},
	"volume": {list: lister(peers.Cloud.ListVolumes, func(x peers.Volume) held {
		return held{peerID: x.ID, name: x.Name, meta: x.Metadata, createdAt: x.CreatedAt}
	}), remove: peers.Cloud.DeleteVolume},
	"image": {list: lister(peers.Cloud.ListImages, func(x peers.Image) held {
		return held{peerID: x.ID, name: x.Name, meta: x.Properties, createdAt: x.CreatedAt}
	})},
	"network": {list: lister(peers.Cloud.ListNetworks, func(x peers.Network) held {
		return held{peerID: x.ID, name: x.Name, meta: x.Metadata}
	}), remove: peers.Cloud.DeleteNetwork},
	"subnet": {list: lister(peers.Cloud.ListSubnets, func(x peers.Subnet) held {
		return held{peerID: x.ID, name: x.Name, meta: x.Metadata}
	}), remove: peers.Cloud.DeleteSubnet},
	"port": {list: lister(peers.Cloud.ListPorts, func(x peers.Port) held {
		return held{peerID: x.ID, name: x.Name, meta: x.Metadata}
	}), remove: peers.Cloud.DeletePort},
	"snapshot": {list: lister(listSnapshots, func(x peers.Snapshot) held {
		return held{peerID: x.ID, name: x.Name, meta: x.Metadata, createdAt: x.CreatedAt}
	}), remove: deleteSnapshot},
	"router": {list: lister(listRouters, func(x peers.Router) held {
		return held{peerID: x.ID, name: x.Name, meta: x.Metadata}
	}), remove: routersDo(peers.Routers.DeleteRouter)},
	"floatingip": {list: lister(listFloatingIPs, func(x peers.FloatingIP) held {
		return held{peerID: x.ID, name: x.Address, meta: x.Metadata}
	}), remove: routersDo(peers.Routers.DeleteFloatingIP)},
}

// listRouters and listFloatingIPs list a peer's routers and floating
// IPs; a peer without them (peers.Routers) holds none.
func listRouters(c peers.Cloud, ctx context.Context, opts peers.ListOptions) ([]peers.Router, error) {
	if rt, ok := c.(peers.Routers); ok {
		return rt.ListRouters(ctx, opts)
	}
	return nil, nil
}

func listFloatingIPs(c peers.Cloud, ctx context.Context, opts peers.ListOptions) ([]peers.FloatingIP, error) {
	if rt, ok := c.(peers.Routers); ok {
		return rt.ListFloatingIPs(ctx, opts)
	}
	return nil, nil
}

// routersDo adapts a peers.Routers delete to a peerKind's remove.
func routersDo(del func(peers.Routers, context.Context, string) error) func(peers.Cloud, context.Context, string) error {
	return func(c peers.Cloud, ctx context.Context, id string) error {
		if rt, ok := c.(peers.Routers); ok {
			return del(rt, ctx, id)
		}
		return nil
	}
}

// listSnapshots lists a peer's volume snapshots; a peer without them
// (peers.Snapshots) holds none.
func listSnapshots(c peers.Cloud, ctx context.Context, opts peers.ListOptions) ([]peers.Snapshot, error) {
	if sn, ok := c.(peers.Snapshots); ok {
		return sn.ListSnapshots(ctx, opts)
	}
	return nil, nil
}

func deleteSnapshot(c peers.Cloud, ctx context.Context, id string) error {
	if sn, ok := c.(peers.Snapshots); ok {
		return sn.DeleteSnapshot(ctx, id)
	}
	return nil
}
