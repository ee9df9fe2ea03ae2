package localcloud

import (
	"context"
	"net/netip"
)

// RouterDriver is the optional router data plane of a driver: what the
// cloud's routers and floating IPs (routers.go) compile to. A cloud whose
// driver lacks it refuses routers and floating IPs with
// peers.ErrNotSupported, so nothing is kept that would forward no packet.
//
// A router forwards between its ports with forwarding and NAT state of
// its own (a network namespace, a user-space switch's routing table),
// never the host's: the driver changes neither the host's ip_forward nor
// its firewall. An external network is an isolated network like any
// other: it has no uplink, so nothing a router does leaves the host.
//
// The cloud runs every router on its first host (the networks it joins
// exist on every host).
type RouterDriver interface {
	// SetRouter defines, or replaces, a router on host: the driver makes
	// what differs from the plan it last took real at once (interfaces
	// joined or left, routes and NAT mappings added or removed), running
	// guests' traffic included.
	SetRouter(ctx context.Context, host string, r RouterPlan) error
	// DeleteRouter removes a router and everything it made; one already
	// gone wraps peers.ErrNotFound.
	DeleteRouter(ctx context.Context, host, id string) error
}

// RouterPlan is everything a router does.
type RouterPlan struct {
	// ID is the router's ID.
	ID string `json:"id"`
	// Interfaces are its ports on project networks, sorted by port ID.
	Interfaces []RouterPort `json:"interfaces,omitempty"`
	// Gateway is its port on an external network, nil when none; its
	// traffic to destinations no interface or route covers goes out there,
	// to DefaultVia when that is valid (the external subnet's gateway).
	Gateway    *RouterPort `json:"gateway,omitempty"`
	DefaultVia netip.Addr  `json:"default_via,omitzero"`
	// SNAT, with a gateway, rewrites the source of what leaves by the
	// gateway from the interfaces' subnets (and has no floating IP) to
	// the gateway's first address, and the answers back.
	SNAT bool `json:"snat,omitempty"`
	// Routes are static routes: Destination through NextHop, an address
	// on one of the interfaces' subnets.
	Routes []RouterRoute `json:"routes,omitempty"`
	// FloatingIPs are one-to-one NAT mappings: traffic to External (an
	// address on the gateway's network, answered by the router there) goes
	// to Internal (a fixed address behind an interface), and what Internal
	// sends out by the gateway leaves from External.
	FloatingIPs []FloatingNAT `json:"floating_ips,omitempty"`
}

// RouterPort is one port of a router: the NIC a driver gives it on the
// port's network.
type RouterPort struct {
	PortID    string `json:"port_id"`
	NetworkID string `json:"network_id"`
	MAC       string `json:"mac"`
	// IPs are the router's addresses there with their subnets' prefix
	// lengths (10.0.0.1/24).
	IPs []netip.Prefix `json:"ips"`
}

// RouterRoute is a static route.
type RouterRoute struct {
	Destination netip.Prefix `json:"destination"`
	NextHop     netip.Addr   `json:"nexthop"`
}

// FloatingNAT maps a floating IP onto a port's fixed address.
type FloatingNAT struct {
	External netip.Addr `json:"external"`
	Internal netip.Addr `json:"internal"`
	// PortID is the port holding Internal.
	PortID string `json:"port_id"`
}
