package localcloud_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

func makeNet(t *testing.T, c *localcloud.Cloud, cidr string) (peers.Network, peers.Subnet) {
	t.Helper()
	n, err := c.CreateNetwork(t.Context(), peers.NetworkSpec{Name: "n", Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := c.CreateSubnet(t.Context(), peers.SubnetSpec{Name: "sn", Project: "p", NetworkID: n.ID, CIDR: cidr})
	if err != nil {
		t.Fatalf("CreateSubnet(%s): %v", cidr, err)
	}
	return n, sn
}

func TestSubnetPlans(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	n, err := c.CreateNetwork(t.Context(), peers.NetworkSpec{Name: "n", Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		spec    peers.SubnetSpec
		gateway string
		pools   []peers.IPRange
	}{
		{"DefaultGateway", peers.SubnetSpec{CIDR: "10.1.0.0/24"}, "10.1.0.1", []peers.IPRange{{Start: "10.1.0.2", End: "10.1.0.254"}}},
		{"GatewayInTheMiddle", peers.SubnetSpec{CIDR: "10.2.0.0/29", GatewayIP: "10.2.0.4"}, "10.2.0.4",
			[]peers.IPRange{{Start: "10.2.0.1", End: "10.2.0.3"}, {Start: "10.2.0.5", End: "10.2.0.6"}}},
		{"GatewayOutside", peers.SubnetSpec{CIDR: "10.4.0.0/29", GatewayIP: "192.0.2.1"}, "192.0.2.1", []peers.IPRange{{Start: "10.4.0.1", End: "10.4.0.6"}}},
		{"NoGateway", peers.SubnetSpec{CIDR: "10.3.0.0/30", NoGateway: true}, "", []peers.IPRange{{Start: "10.3.0.1", End: "10.3.0.2"}}},
		{"IPv6", peers.SubnetSpec{CIDR: "fd00:1::/64", IPVersion: 6}, "fd00:1::1", []peers.IPRange{{Start: "fd00:1::2", End: "fd00:1::ffff:ffff:ffff:ffff"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Name, spec.Project, spec.NetworkID = tc.name, "p", n.ID
			sn, err := c.CreateSubnet(t.Context(), spec)
			if err != nil {
				t.Fatal(err)
			}
			if sn.GatewayIP != tc.gateway || !slices.Equal(sn.AllocationPools, tc.pools) {
				t.Fatalf("subnet %s: gateway %q, pools %v; want %q, %v", spec.CIDR, sn.GatewayIP, sn.AllocationPools, tc.gateway, tc.pools)
			}
		})
	}
	refused := []struct {
		name string
		spec peers.SubnetSpec
	}{
		{"TooSmall", peers.SubnetSpec{CIDR: "10.9.0.0/31"}},
		{"HostBitsSet", peers.SubnetSpec{CIDR: "10.9.1.3/24"}},
		{"GatewayOtherVersion", peers.SubnetSpec{CIDR: "10.9.2.0/24", GatewayIP: "fd00::1"}},
		{"GatewayAndNoGateway", peers.SubnetSpec{CIDR: "10.9.3.0/24", GatewayIP: "10.9.3.1", NoGateway: true}},
		{"BadNameserver", peers.SubnetSpec{CIDR: "10.9.4.0/24", DNSNameservers: []string{"dns.example"}}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Name, spec.Project, spec.NetworkID = tc.name, "p", n.ID
			if _, err := c.CreateSubnet(t.Context(), spec); !errors.Is(err, peers.ErrInvalid) {
				t.Fatalf("CreateSubnet(%+v) = %v, want ErrInvalid", spec, err)
			}
		})
	}
}

// A /30 has two host addresses: the gateway takes one, a port the other.
func TestIPExhaustion(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	img := seed(t, c).ImageID
	n, sn := makeNet(t, c, "192.168.7.0/30")
	first, err := c.CreatePort(t.Context(), peers.PortSpec{Name: "first", Project: "p", NetworkID: n.ID})
	if err != nil || len(first.FixedIPs) != 1 || first.FixedIPs[0].IPAddress != "192.168.7.2" {
		t.Fatalf("first port = %+v, %v; want 192.168.7.2", first, err)
	}
	steps := []struct {
		name string
		try  func() error
	}{
		{"Port", func() error {
			_, err := c.CreatePort(t.Context(), peers.PortSpec{Name: "second", Project: "p", NetworkID: n.ID})
			return err
		}},
		{"PortOnSubnet", func() error {
			_, err := c.CreatePort(t.Context(), peers.PortSpec{Name: "third", Project: "p", NetworkID: n.ID, FixedIPs: []peers.FixedIP{{SubnetID: sn.ID}}})
			return err
		}},
		{"Server", func() error {
			_, err := c.CreateServer(t.Context(), peers.ServerSpec{Name: "s", Project: "p", FlavorID: "1", ImageID: img, Networks: []peers.NetworkAttachment{{NetworkID: n.ID}}})
			return err
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.try(); !errors.Is(err, peers.ErrCapacity) {
				t.Fatalf("with the /30 full: %v, want ErrCapacity", err)
			}
		})
	}
	// The refused server gave back what it took.
	if capa, _ := c.Capacity(t.Context()); capa.Instances.Used != 0 || capa.VCPUs.Used != 0 {
		t.Fatalf("capacity after a refused server: %+v, want nothing used", capa)
	}
	if ports, _ := c.ListPorts(t.Context(), peers.ListOptions{}); len(ports) != 1 {
		t.Fatalf("ports after refusals: %d, want only the first", len(ports))
	}
	if err := c.DeletePort(t.Context(), first.ID); err != nil {
		t.Fatal(err)
	}
	again, err := c.CreatePort(t.Context(), peers.PortSpec{Name: "again", Project: "p", NetworkID: n.ID})
	if err != nil || again.FixedIPs[0].IPAddress != "192.168.7.2" {
		t.Fatalf("port after freeing the address = %+v, %v; want 192.168.7.2 again", again, err)
	}
}

func TestServerPorts(t *testing.T) {
	c, drv := newCloud(t, oneHost(t))
	img := seed(t, c).ImageID
	n, sn := makeNet(t, c, "10.5.0.0/24")
	pre, err := c.CreatePort(t.Context(), peers.PortSpec{Name: "pre", Project: "p", NetworkID: n.ID, FixedIPs: []peers.FixedIP{{IPAddress: "10.5.0.99"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := c.CreateServer(t.Context(), peers.ServerSpec{
		Name: "s", Project: "p", FlavorID: "1", ImageID: img,
		Networks: []peers.NetworkAttachment{{PortID: pre.ID}, {NetworkID: n.ID, FixedIP: "10.5.0.42"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv = waitServer(t, c, srv.ID, peers.ServerActive)
	var addrs []string
	for _, a := range srv.Addresses {
		addrs = append(addrs, a.Network+"="+a.Addr)
	}
	if !slices.Equal(addrs, []string{"n=10.5.0.99", "n=10.5.0.42"}) {
		t.Fatalf("addresses = %v, want n=10.5.0.99 then n=10.5.0.42", addrs)
	}
	dom, state, ok := drv.Domain("host-a", srv.ID)
	if !ok || state != localcloud.DomainRunning || len(dom.NICs) != 2 || dom.NICs[0].MAC != pre.MACAddress ||
		!slices.Equal(dom.NICs[1].IPs, []string{"10.5.0.42/24"}) || dom.NICs[1].Gateway != sn.GatewayIP {
		t.Fatalf("domain = %+v (%s, %v); want running with the two NICs", dom, state, ok)
	}
	if err := c.DeletePort(t.Context(), pre.ID); !errors.Is(err, peers.ErrConflict) {
		t.Fatalf("DeletePort of a bound port = %v, want ErrConflict", err)
	}
	if err := c.DeleteServer(t.Context(), srv.ID); err != nil {
		t.Fatal(err)
	}
	waitServerGone(t, c, srv.ID)
	// The port the server was given survives it, unbound; the one made for
	// it is gone.
	ports, err := c.ListPorts(t.Context(), peers.ListOptions{})
	if err != nil || len(ports) != 1 || ports[0].ID != pre.ID || ports[0].DeviceID != "" {
		t.Fatalf("ports after the server = %+v, %v; want only %s, unbound", ports, err, pre.ID)
	}
}
