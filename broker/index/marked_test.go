package index_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// TestMarked: of the networks carrying a caller's marks, those the index
// holds for the project come back by broker ID; one no entry names (a
// create whose broker died before indexing it) is deleted from its peer;
// other projects', other installations' and unmarked ones are left alone.
func TestMarked(t *testing.T) {
	ctx := context.Background()
	x := index.New(registry.NewMemory())
	a, b := newCloud(t, "a"), newCloud(t, "b")
	members := []*peers.Member{{Peer: registry.Peer{ID: "peer-a", Name: "a"}, Cloud: a}, {Peer: registry.Peer{ID: "peer-b", Name: "b"}, Cloud: b}}
	tag := map[string]string{"cloudmux_deployment": "d1"}
	create := func(c peers.Cloud, broker, project, id string, extra map[string]string) peers.Network {
		t.Helper()
		meta := marks(broker, project, id)
		maps.Copy(meta, extra)
		n, err := c.CreateNetwork(ctx, peers.NetworkSpec{Name: id, Project: project, Metadata: meta})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	put := func(member, project, id string, n peers.Network) {
		t.Helper()
		if err := x.Put(ctx, index.Entry{Kind: "network", ID: id, Project: project, PeerID: member, PeerResourceID: n.ID, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	put("peer-a", "p1", "net-1", create(a, "me", "p1", "net-1", tag))
	put("peer-b", "p1", "net-2", create(b, "me", "p1", "net-2", tag))
	orphan := create(a, "me", "p1", "net-orphan", tag)
	untagged := create(a, "me", "p1", "net-untagged", nil)
	put("peer-a", "p1", "net-untagged", untagged)
	other := create(b, "me", "p2", "net-other", tag)
	put("peer-b", "p2", "net-other", other)
	foreign := create(b, "them", "p1", "net-foreign", tag)

	got, err := x.Marked(ctx, members, "me", "network", "p1", tag, time.Second)
	if err != nil || !slices.Equal(got, []string{"net-1", "net-2"}) {
		t.Fatalf("Marked = %v, %v", got, err)
	}
	tests := []struct {
		name  string
		cloud peers.Cloud
		id    string
		gone  bool
	}{
		{"the unindexed one is deleted", a, orphan.ID, true},
		{"an unmarked one stays", a, untagged.ID, false},
		{"another project's stays", b, other.ID, false},
		{"another installation's stays", b, foreign.ID, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cloud.GetNetwork(ctx, tc.id)
			if gone := errors.Is(err, peers.ErrNotFound); gone != tc.gone {
				t.Fatalf("gone = %v (%v), want %v", gone, err, tc.gone)
			}
		})
	}

	// A peer that cannot be listed is an error, never "none there".
	down := append(slices.Clone(members), &peers.Member{Peer: registry.Peer{ID: "peer-c", Name: "c"}, Cloud: failing{}})
	if _, err := x.Marked(ctx, down, "me", "network", "p1", tag, time.Second); !errors.Is(err, peers.ErrUnavailable) {
		t.Fatalf("with a peer down: %v", err)
	}
}

// failing is a peer whose lists fail.
type failing struct{ peers.Cloud }

func (failing) ListNetworks(context.Context, peers.ListOptions) ([]peers.Network, error) {
	return nil, peers.ErrUnavailable
}

// TestMarkedKinds: each kind a caller can mark is listed and cleaned up
// through its own peer calls: the indexed one comes back, the unindexed
// one is deleted from its peer, and Rebuild's scan finds both.
func TestMarkedKinds(t *testing.T) {
	ctx := context.Background()
	c := newCloud(t, "a")
	members := []*peers.Member{{Peer: registry.Peer{ID: "peer-a", Name: "a"}, Cloud: c}}
	tag := map[string]string{"cloudmux_deployment": "d1"}
	meta := func(id string) map[string]string {
		m := marks("me", "p1", id)
		maps.Copy(m, tag)
		return m
	}
	net, err := c.CreateNetwork(ctx, peers.NetworkSpec{Name: "base", Project: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.CreateSubnet(ctx, peers.SubnetSpec{Name: "base", Project: "p1", NetworkID: net.ID, CIDR: "10.9.0.0/24", IPVersion: 4})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		kind   string
		create func(id string) (string, error)
		get    func(peerID string) error
	}{
		{"volumes", "volume", func(id string) (string, error) {
			v, err := c.CreateVolume(ctx, peers.VolumeSpec{Name: id, Project: "p1", SizeGiB: 1, Metadata: meta(id)})
			return v.ID, err
		}, func(peerID string) error { _, err := c.GetVolume(ctx, peerID); return err }},
		{"networks", "network", func(id string) (string, error) {
			n, err := c.CreateNetwork(ctx, peers.NetworkSpec{Name: id, Project: "p1", Metadata: meta(id)})
			return n.ID, err
		}, func(peerID string) error { _, err := c.GetNetwork(ctx, peerID); return err }},
		{"subnets", "subnet", func(id string) (string, error) {
			cidr := map[string]string{"subnet-kept": "10.9.1.0/24", "subnet-orphan": "10.9.2.0/24"}[id]
			s, err := c.CreateSubnet(ctx, peers.SubnetSpec{Name: id, Project: "p1", NetworkID: net.ID, CIDR: cidr, IPVersion: 4, Metadata: meta(id)})
			return s.ID, err
		}, func(peerID string) error { _, err := c.GetSubnet(ctx, peerID); return err }},
		{"ports", "port", func(id string) (string, error) {
			p, err := c.CreatePort(ctx, peers.PortSpec{Name: id, Project: "p1", NetworkID: net.ID, FixedIPs: []peers.FixedIP{{SubnetID: sub.ID}}, Metadata: meta(id)})
			return p.ID, err
		}, func(peerID string) error { _, err := c.GetPort(ctx, peerID); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := index.New(registry.NewMemory())
			keptID, orphanID := tc.kind+"-kept", tc.kind+"-orphan"
			keptPeer, err := tc.create(keptID)
			if err != nil {
				t.Fatal(err)
			}
			orphanPeer, err := tc.create(orphanID)
			if err != nil {
				t.Fatal(err)
			}
			found, err := index.Scan(ctx, c, "me")
			if err != nil {
				t.Fatal(err)
			}
			scanned := map[string]string{}
			for _, f := range found {
				if f.Kind == tc.kind {
					scanned[f.ID] = f.PeerResourceID
				}
			}
			if scanned[keptID] != keptPeer || scanned[orphanID] != orphanPeer {
				t.Fatalf("Scan found %v, want %s and %s", scanned, keptID, orphanID)
			}
			if err := x.Put(ctx, index.Entry{Kind: tc.kind, ID: keptID, Project: "p1", PeerID: "peer-a", PeerResourceID: keptPeer, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			got, err := x.Marked(ctx, members, "me", tc.kind, "p1", tag, time.Second)
			if err != nil || !slices.Equal(got, []string{keptID}) {
				t.Fatalf("Marked = %v, %v; want [%s]", got, err, keptID)
			}
			if err := tc.get(orphanPeer); !errors.Is(err, peers.ErrNotFound) {
				t.Fatalf("the unindexed %s is still on its peer: %v", tc.kind, err)
			}
			if err := tc.get(keptPeer); err != nil {
				t.Fatalf("the indexed %s: %v", tc.kind, err)
			}
		})
	}
}
