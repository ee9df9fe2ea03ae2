package localcloud

import (
	"net/netip"

	"github.com/cloudmux/cloudmux/peers"
)

// Smallest subnets worth having: a /30 (IPv4) or /126 (IPv6) leaves one
// address for a port once the gateway has its own.
const (
	maxPrefixV4 = 30
	maxPrefixV6 = 126
)

// ipRange is an inclusive range of addresses.
type ipRange struct{ start, end netip.Addr }

// subnetPlan is the parsed addressing of a subnet request, as Neutron
// derives it: the network address and (IPv4) broadcast are never handed
// out, the gateway defaults to the first host, and the allocation pools
// are every other host address.
type subnetPlan struct {
	prefix  netip.Prefix
	gateway netip.Addr // invalid when the subnet has none
	pools   []ipRange
}

func (p subnetPlan) version() int {
	if p.prefix.Addr().Is4() {
		return 4
	}
	return 6
}

// planSubnet validates spec's addressing and derives gateway and pools.
func planSubnet(spec peers.SubnetSpec) (subnetPlan, error) {
	p, err := netip.ParsePrefix(spec.CIDR)
	if err != nil {
		return subnetPlan{}, errf(peers.ErrInvalid, "cidr %q is not a CIDR (%v)", spec.CIDR, err)
	}
	if m := p.Masked(); m != p {
		return subnetPlan{}, errf(peers.ErrInvalid, "cidr %s has host bits set; %s is the subnet", spec.CIDR, m)
	}
	version := 4
	if p.Addr().Is6() {
		version = 6
	}
	if spec.IPVersion != 0 && spec.IPVersion != version {
		return subnetPlan{}, errf(peers.ErrInvalid, "cidr %s is IPv%d but ip_version is %d", spec.CIDR, version, spec.IPVersion)
	}
	if (version == 4 && p.Bits() > maxPrefixV4) || (version == 6 && p.Bits() > maxPrefixV6) {
		return subnetPlan{}, errf(peers.ErrInvalid, "cidr %s is too small to hold a gateway and a port", spec.CIDR)
	}
	first, last := p.Addr().Next(), lastAddr(p)
	if version == 4 {
		last = last.Prev() // the broadcast address
	}
	plan := subnetPlan{prefix: p}
	switch {
	case spec.NoGateway && spec.GatewayIP != "":
		return subnetPlan{}, errf(peers.ErrInvalid, "gateway_ip %s given with no gateway", spec.GatewayIP)
	case spec.NoGateway:
	case spec.GatewayIP == "":
		plan.gateway = first
	default:
		// Like Neutron: a gateway outside the subnet is fine (a router
		// elsewhere on the segment); inside, it must be a host address.
		gw, err := netip.ParseAddr(spec.GatewayIP)
		if err != nil || gw.Is4() != p.Addr().Is4() || (p.Contains(gw) && (gw.Less(first) || last.Less(gw))) {
			return subnetPlan{}, errf(peers.ErrInvalid, "gateway_ip %q is not an IPv%d host address (inside %s it may not be the network or broadcast address)", spec.GatewayIP, version, spec.CIDR)
		}
		plan.gateway = gw
	}
	// The pool is first..last without the gateway, so one or two ranges.
	switch gw := plan.gateway; {
	case !gw.IsValid() || !p.Contains(gw):
		plan.pools = []ipRange{{first, last}}
	case gw == first:
		plan.pools = []ipRange{{first.Next(), last}}
	case gw == last:
		plan.pools = []ipRange{{first, last.Prev()}}
	default:
		plan.pools = []ipRange{{first, gw.Prev()}, {gw.Next(), last}}
	}
	return plan, nil
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// allocate hands out the lowest free pool address to portID; false when
// the pools are exhausted. Lowest-first keeps addresses predictable in
// tests and logs; Neutron picks at random, and nothing relies on either.
func (sn *subnet) allocate(portID string) (netip.Addr, bool) {
	for _, r := range sn.plan.pools {
		for a := r.start; a.IsValid() && !r.end.Less(a); a = a.Next() {
			if _, taken := sn.used[a]; !taken {
				sn.used[a] = portID
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// reserve gives a requested address to portID. Like Neutron, an address
// outside the pools but inside the subnet is fine (it is how an admin pins
// one), the network and broadcast addresses are not, and the gateway and
// addresses in use conflict.
func (sn *subnet) reserve(a netip.Addr, portID string) error {
	if !sn.plan.prefix.Contains(a) {
		return errf(peers.ErrInvalid, "ip_address %s is not in subnet %s (%s)", a, sn.ID, sn.CIDR)
	}
	last := lastAddr(sn.plan.prefix)
	if a == sn.plan.prefix.Addr() || (a.Is4() && a == last) {
		return errf(peers.ErrInvalid, "ip_address %s is the network or broadcast address of %s", a, sn.CIDR)
	}
	if a == sn.plan.gateway {
		return errf(peers.ErrConflict, "ip_address %s is the gateway of subnet %s", a, sn.ID)
	}
	if owner, taken := sn.used[a]; taken {
		return errf(peers.ErrConflict, "ip_address %s of subnet %s is in use by port %s", a, sn.ID, owner)
	}
	sn.used[a] = portID
	return nil
}

// release returns an address to the subnet.
func (sn *subnet) release(a netip.Addr) { delete(sn.used, a) }
