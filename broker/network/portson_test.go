package network_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// TestPortsOnReadsOnlyItsPeers: the lookups another API makes by where
// its ports are (EC2's addresses: their floating IPs' peers, an
// instance's peer) read those peers alone, never every peer: PortsOn
// gives the project's ports there, ServerPortsOf an unknown server as
// not found without asking any peer.
func TestPortsOnReadsOnlyItsPeers(t *testing.T) {
	ctx := context.Background()
	asked := askedPeers{}
	var ps []brokertest.Peer
	for _, name := range []string{"p1", "p2", "p3"} {
		asked[name] = &atomic.Int64{}
		ps = append(ps, brokertest.Peer{Name: name, Wrap: func(c *localcloud.Cloud) peers.Cloud {
			return countedNetworks{Cloud: c, calls: asked[name]}
		}})
	}
	e := brokertest.New(t, ps, nil)
	a := newReplica(t, e, replicaStore(t))
	a.Discover(ctx)
	var p1, p2 string
	for _, m := range e.Pool.Members() {
		switch m.Peer.Name {
		case "p1":
			p1 = m.Peer.ID
		case "p2":
			p2 = m.Peer.ID
		}
	}
	var portIDs []string
	for _, zone := range []string{"p1", "p2"} {
		n, err := a.CreateNetwork(ctx, "alpha", network.NetworkCreate{Name: "n-" + zone, ZoneHints: []string{zone}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.CreateSubnet(ctx, "alpha", network.SubnetCreate{NetworkID: n.Ref.ID, CIDR: "10.61.0.0/24", IPVersion: 4}); err != nil {
			t.Fatal(err)
		}
		p, err := a.CreatePort(ctx, "alpha", network.PortCreate{NetworkID: n.Ref.ID})
		if err != nil {
			t.Fatal(err)
		}
		portIDs = append(portIDs, p.Ref.ID)
	}

	tests := []struct {
		name    string
		peerIDs []string
		want    []string
		asked   []string
	}{
		{"one peer", []string{p1}, portIDs[:1], []string{"p1"}},
		{"two peers", []string{p1, p2}, portIDs, []string{"p1", "p2"}},
		{"none", nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			asked.reset()
			ports, failed, err := a.PortsOn(ctx, "alpha", tc.peerIDs)
			if err != nil || len(failed) > 0 {
				t.Fatalf("PortsOn = %v, failed %v", err, failed)
			}
			var got []string
			for _, p := range ports {
				got = append(got, p.Ref.ID)
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("ports = %v, want %v", got, want)
			}
			if got := asked.asked(); !slices.Equal(got, tc.asked) {
				t.Errorf("peers asked = %v, want %v", got, tc.asked)
			}
		})
	}
	if ports, _, err := a.PortsOn(ctx, "beta", []string{p1, p2}); err != nil || len(ports) != 0 {
		t.Fatalf("another project's PortsOn = %v, %v; want none", ports, err)
	}
	asked.reset()
	if _, err := a.ServerPortsOf(ctx, "alpha", "7b0c7d44-0000-4000-8000-000000000000"); !errors.Is(err, network.ErrNotFound) {
		t.Fatalf("ServerPortsOf an unknown server = %v, want ErrNotFound", err)
	}
	if got := asked.asked(); len(got) != 0 {
		t.Fatalf("ServerPortsOf an unknown server asked %v", got)
	}
}
