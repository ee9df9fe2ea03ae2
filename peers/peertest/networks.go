package peertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

// makeNetwork creates a network with one IPv4 subnet of cidr and deletes
// the network (Neutron takes its subnets along) at cleanup. Networks of
// different runs may reuse a CIDR: overlapping subnets on different
// networks are allowed.
func (s *suite) makeNetwork(t *testing.T, cidr string) (peers.Network, peers.Subnet) {
	t.Helper()
	return s.makeNetworkIn(t, s.fx.Project, cidr)
}

// makeNetworkIn is makeNetwork in project.
func (s *suite) makeNetworkIn(t *testing.T, project, cidr string) (peers.Network, peers.Subnet) {
	t.Helper()
	ctx := t.Context()
	net, err := s.c.CreateNetwork(ctx, peers.NetworkSpec{Name: s.name("net"), Project: project, Metadata: s.meta()})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	s.cleanupNetwork(t, net.ID)
	sub, err := s.c.CreateSubnet(ctx, peers.SubnetSpec{
		Name: s.name("subnet"), Project: project, NetworkID: net.ID, CIDR: cidr, IPVersion: 4, EnableDHCP: true, Metadata: s.meta(),
	})
	if err != nil {
		t.Fatalf("CreateSubnet(%s on %s): %v", cidr, net.ID, err)
	}
	return net, sub
}

func (s *suite) cleanupNetwork(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := s.c.DeleteNetwork(ctx, id); err != nil && !errors.Is(err, peers.ErrNotFound) {
			t.Errorf("cleanup: DeleteNetwork(%s): %v", id, err)
		}
	})
}

func (s *suite) cleanupPort(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := s.c.DeletePort(ctx, id); err != nil && !errors.Is(err, peers.ErrNotFound) {
			t.Errorf("cleanup: DeletePort(%s): %v", id, err)
		}
	})
}

func (s *suite) testNetworks(t *testing.T) {
	ctx := t.Context()
	meta := s.meta("peertest_role", "network")
	spec := peers.NetworkSpec{Name: s.name("net"), Project: s.fx.Project, Metadata: meta}
	net, err := s.c.CreateNetwork(ctx, spec)
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	s.cleanupNetwork(t, net.ID)
	wantUUID(t, "CreateNetwork", net.ID)

	s.mustPoll(t, "network "+net.ID+" to become ACTIVE", func(ctx context.Context) (bool, string, error) {
		var err error
		net, err = s.c.GetNetwork(ctx, net.ID)
		return net.Status == "ACTIVE", net.Status, err
	})
	if net.Name != spec.Name || net.Project != s.fx.Project || net.Shared {
		t.Fatalf("GetNetwork = %+v, want name %q, project %q, not shared", net, spec.Name, s.fx.Project)
	}
	wantMetadata(t, "GetNetwork", net.Metadata, meta)
	t.Run("ListNetworks", func(t *testing.T) {
		s.checkListed(t, net.ID, meta, func(ctx context.Context, o peers.ListOptions) ([]string, error) {
			l, err := s.c.ListNetworks(ctx, o)
			return ids(l, func(x peers.Network) string { return x.ID }), err
		})
	})

	subMeta := s.meta("peertest_role", "subnet")
	sub, err := s.c.CreateSubnet(ctx, peers.SubnetSpec{
		Name: s.name("subnet"), Project: s.fx.Project, NetworkID: net.ID, CIDR: "10.79.0.0/24", IPVersion: 4, EnableDHCP: true, Metadata: subMeta,
	})
	if err != nil {
		t.Fatalf("CreateSubnet: %v", err)
	}
	wantUUID(t, "CreateSubnet", sub.ID)
	if sub.CIDR != "10.79.0.0/24" || sub.IPVersion != 4 || sub.GatewayIP != "10.79.0.1" || sub.NetworkID != net.ID || sub.Project != s.fx.Project {
		t.Fatalf("CreateSubnet = %+v\nwant CIDR 10.79.0.0/24, IPv4, gateway 10.79.0.1 (the first host), network %s, project %q", sub, net.ID, s.fx.Project)
	}
	if len(sub.AllocationPools) == 0 {
		t.Fatalf("CreateSubnet = %+v, want default allocation pools", sub)
	}
	for _, p := range sub.AllocationPools {
		if !inCIDR(p.Start, sub.CIDR) || !inCIDR(p.End, sub.CIDR) || p.Start == sub.GatewayIP || p.End == sub.GatewayIP {
			t.Fatalf("allocation pool %+v: want it inside %s and not starting or ending at the gateway", p, sub.CIDR)
		}
	}
	wantMetadata(t, "CreateSubnet", sub.Metadata, subMeta)
	if got, err := s.c.GetSubnet(ctx, sub.ID); err != nil || got.CIDR != sub.CIDR || got.NetworkID != net.ID {
		t.Fatalf("GetSubnet(%s) = %+v, %v; want what CreateSubnet returned", sub.ID, got, err)
	}
	if got, err := s.c.GetNetwork(ctx, net.ID); err != nil || !slices.Contains(got.Subnets, sub.ID) {
		t.Fatalf("GetNetwork(%s).Subnets = %v, %v; want it to contain %s", net.ID, got.Subnets, err, sub.ID)
	}
	t.Run("ListSubnets", func(t *testing.T) {
		s.checkListed(t, sub.ID, subMeta, func(ctx context.Context, o peers.ListOptions) ([]string, error) {
			l, err := s.c.ListSubnets(ctx, o)
			return ids(l, func(x peers.Subnet) string { return x.ID }), err
		})
	})

	// Neutron refuses a subnet overlapping another on the same network (400).
	over, err := s.c.CreateSubnet(ctx, peers.SubnetSpec{Name: s.name("overlap"), Project: s.fx.Project, NetworkID: net.ID, CIDR: "10.79.0.128/25", IPVersion: 4})
	if err == nil {
		_ = s.c.DeleteSubnet(ctx, over.ID)
	}
	wantErr(t, "CreateSubnet overlapping another subnet of the network", err, peers.ErrInvalid)

	if err := s.c.DeleteSubnet(ctx, sub.ID); err != nil {
		t.Fatalf("DeleteSubnet(%s): %v", sub.ID, err)
	}
	_, err = s.c.GetSubnet(ctx, sub.ID)
	wantErr(t, "GetSubnet after delete", err, peers.ErrNotFound)
	if got, err := s.c.GetNetwork(ctx, net.ID); err != nil || slices.Contains(got.Subnets, sub.ID) {
		t.Fatalf("GetNetwork(%s).Subnets = %v, %v; want the deleted subnet gone", net.ID, got.Subnets, err)
	}

	if err := s.c.DeleteNetwork(ctx, net.ID); err != nil {
		t.Fatalf("DeleteNetwork(%s): %v", net.ID, err)
	}
	if err := s.pollGone("network "+net.ID, func(ctx context.Context) (string, error) {
		n, err := s.c.GetNetwork(ctx, net.ID)
		return n.Status, err
	}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteNetwork twice", s.c.DeleteNetwork(ctx, net.ID), peers.ErrNotFound)
	_, err = s.c.GetPort(ctx, "00000000-0000-4000-8000-00000000cafe")
	wantErr(t, "GetPort of an unknown ID", err, peers.ErrNotFound)
}

// testSubnetRefusals creates subnets Neutron answers with 400. A CIDR with
// host bits set (10.0.0.3/24) is not among them: Neutron may normalise it.
func (s *suite) testSubnetRefusals(t *testing.T) {
	net, err := s.c.CreateNetwork(t.Context(), peers.NetworkSpec{Name: s.name("net"), Project: s.fx.Project, Metadata: s.meta()})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	s.cleanupNetwork(t, net.ID)
	cases := []struct {
		name    string
		spec    peers.SubnetSpec
		targets []error
	}{
		{"NotACIDR", peers.SubnetSpec{CIDR: "not-a-cidr", IPVersion: 4}, nil},
		{"PrefixTooLong", peers.SubnetSpec{CIDR: "10.80.0.0/33", IPVersion: 4}, nil},
		{"OctetOutOfRange", peers.SubnetSpec{CIDR: "300.1.2.0/24", IPVersion: 4}, nil},
		{"VersionMismatch", peers.SubnetSpec{CIDR: "fd00:80::/64", IPVersion: 4}, nil},
		// Neutron accepts a gateway outside the subnet (a router elsewhere on
		// the segment) but not the network or broadcast address.
		{"GatewayIsNetworkAddress", peers.SubnetSpec{CIDR: "10.80.2.0/24", IPVersion: 4, GatewayIP: "10.80.2.0"}, nil},
		{"GatewayIsBroadcast", peers.SubnetSpec{CIDR: "10.80.4.0/24", IPVersion: 4, GatewayIP: "10.80.4.255"}, nil},
		// Neutron answers 404 for a missing network; a driver may call it invalid input.
		{"UnknownNetwork", peers.SubnetSpec{NetworkID: "00000000-0000-4000-8000-00000000f00d", CIDR: "10.80.3.0/24", IPVersion: 4}, []error{peers.ErrNotFound, peers.ErrInvalid}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Name, spec.Project = s.name("bad"), s.fx.Project
			if spec.NetworkID == "" {
				spec.NetworkID = net.ID
			}
			sub, err := s.c.CreateSubnet(t.Context(), spec)
			if err == nil {
				_ = s.c.DeleteSubnet(t.Context(), sub.ID)
			}
			targets := tc.targets
			if targets == nil {
				targets = []error{peers.ErrInvalid}
			}
			wantErr(t, fmt.Sprintf("CreateSubnet(%s, version %d, gateway %q)", spec.CIDR, spec.IPVersion, spec.GatewayIP), err, targets...)
		})
	}
}

func (s *suite) testPorts(t *testing.T) {
	ctx := t.Context()
	net, sub := s.makeNetwork(t, "10.81.0.0/24")
	create := func(t *testing.T, spec peers.PortSpec) (peers.Port, error) {
		t.Helper()
		spec.Name, spec.Project, spec.NetworkID = s.name("port"), s.fx.Project, net.ID
		if spec.Metadata == nil {
			spec.Metadata = s.meta()
		}
		p, err := s.c.CreatePort(t.Context(), spec)
		if err == nil {
			s.cleanupPort(t, p.ID)
		}
		return p, err
	}

	meta := s.meta("peertest_role", "port")
	auto, err := create(t, peers.PortSpec{Metadata: meta})
	if err != nil {
		t.Fatalf("CreatePort: %v", err)
	}
	wantUUID(t, "CreatePort", auto.ID)
	if auto.NetworkID != net.ID || auto.MACAddress == "" || len(auto.FixedIPs) != 1 ||
		auto.FixedIPs[0].SubnetID != sub.ID || !inCIDR(auto.FixedIPs[0].IPAddress, sub.CIDR) || auto.FixedIPs[0].IPAddress == sub.GatewayIP {
		t.Fatalf("CreatePort = %+v\nwant network %s, a MAC, and one fixed IP of subnet %s inside %s that is not the gateway %s", auto, net.ID, sub.ID, sub.CIDR, sub.GatewayIP)
	}
	wantMetadata(t, "CreatePort", auto.Metadata, meta)
	if got, err := s.c.GetPort(ctx, auto.ID); err != nil || got.MACAddress != auto.MACAddress || len(got.FixedIPs) != 1 || got.FixedIPs[0] != auto.FixedIPs[0] {
		t.Fatalf("GetPort(%s) = %+v, %v; want what CreatePort returned: %+v", auto.ID, got, err, auto)
	}
	t.Run("ListPorts", func(t *testing.T) {
		s.checkListed(t, auto.ID, meta, func(ctx context.Context, o peers.ListOptions) ([]string, error) {
			l, err := s.c.ListPorts(ctx, o)
			return ids(l, func(x peers.Port) string { return x.ID }), err
		})
	})

	t.Run("ExplicitIP", func(t *testing.T) {
		p, err := create(t, peers.PortSpec{FixedIPs: []peers.FixedIP{{SubnetID: sub.ID, IPAddress: "10.81.0.50"}}})
		if err != nil {
			t.Fatalf("CreatePort with 10.81.0.50: %v", err)
		}
		if len(p.FixedIPs) != 1 || p.FixedIPs[0].IPAddress != "10.81.0.50" {
			t.Fatalf("CreatePort with 10.81.0.50: fixed IPs %+v", p.FixedIPs)
		}
		_, err = create(t, peers.PortSpec{FixedIPs: []peers.FixedIP{{IPAddress: "10.81.0.50"}}})
		wantErr(t, "CreatePort with an IP already in use", err, peers.ErrConflict)
		_, err = create(t, peers.PortSpec{FixedIPs: []peers.FixedIP{{SubnetID: sub.ID, IPAddress: "192.0.2.10"}}})
		wantErr(t, "CreatePort with an IP outside the subnet", err, peers.ErrInvalid)
	})

	t.Run("ConcurrentDistinctIPs", func(t *testing.T) {
		const n = 5
		var wg sync.WaitGroup
		ports := make([]peers.Port, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				ports[i], errs[i] = s.c.CreatePort(t.Context(), peers.PortSpec{Name: s.name("port"), Project: s.fx.Project, NetworkID: net.ID, Metadata: s.meta()})
			})
		}
		wg.Wait()
		seen := map[string]string{}
		for i, p := range ports {
			if errs[i] != nil {
				t.Errorf("concurrent CreatePort %d: %v", i, errs[i])
				continue
			}
			s.cleanupPort(t, p.ID)
			if len(p.FixedIPs) != 1 {
				t.Errorf("concurrent CreatePort %d: fixed IPs %+v, want one", i, p.FixedIPs)
				continue
			}
			ip := p.FixedIPs[0].IPAddress
			if other, dup := seen[ip]; dup {
				t.Errorf("ports %s and %s both got %s", other, p.ID, ip)
			}
			seen[ip] = p.ID
		}
	})

	// Neutron: 409 NetworkInUse / SubnetInUse while a port not owned by the
	// network itself (a DHCP port) is there.
	wantErr(t, "DeleteNetwork with ports on it", s.c.DeleteNetwork(ctx, net.ID), peers.ErrConflict)
	wantErr(t, "DeleteSubnet with ports on it", s.c.DeleteSubnet(ctx, sub.ID), peers.ErrConflict)

	if err := s.c.DeletePort(ctx, auto.ID); err != nil {
		t.Fatalf("DeletePort(%s): %v", auto.ID, err)
	}
	_, err = s.c.GetPort(ctx, auto.ID)
	wantErr(t, "GetPort after delete", err, peers.ErrNotFound)
	wantErr(t, "DeletePort twice", s.c.DeletePort(ctx, auto.ID), peers.ErrNotFound)
}
