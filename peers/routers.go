package peers

import (
	"context"
	"fmt"
	"net/netip"
)

// Routers is the optional ability to route, as Neutron's router extension
// does: routers joining a cloud's subnets (interfaces), leading to an
// external network (a gateway, with or without source NAT), with static
// routes, and floating IPs: an external network's address mapped one to
// one onto a port's fixed address, through the router joining the port's
// subnet to that external network.
//
// Router interfaces, gateways and floating IPs take ports, as Neutron's
// do (DeviceOwner network:router_interface, network:router_gateway,
// network:floatingip; DeviceID the router or floating IP): ListPorts
// shows them, and DeletePort of one is ErrConflict.
type Routers interface {
	// RoutersAvailable is nil when the cloud can route, else an error
	// wrapping ErrNotSupported saying why (a local cloud whose driver has
	// no router data plane, an OpenStack without Neutron's router
	// extension). Every write below is refused the same way then: nothing
	// is kept that would forward no packet.
	RoutersAvailable(ctx context.Context) error

	// CreateRouter creates a router, with its gateway when spec has one
	// (ErrInvalid when spec.Gateway's network is not external).
	CreateRouter(ctx context.Context, spec RouterSpec) (Router, error)
	GetRouter(ctx context.Context, id string) (Router, error)
	ListRouters(ctx context.Context, opts ListOptions) ([]Router, error)
	// UpdateRouter changes what patch sets. Routes replace the router's
	// routes; a route whose next hop is in no subnet the router has an
	// interface on is ErrInvalid. Clearing the gateway while a floating IP
	// goes through it is ErrConflict.
	UpdateRouter(ctx context.Context, id string, patch RouterPatch) (Router, error)
	// DeleteRouter removes a router with no interfaces (else ErrConflict)
	// and its gateway.
	DeleteRouter(ctx context.Context, id string) error
	// AddRouterInterface joins a router to a subnet: by SubnetID (a new
	// port at the subnet's gateway address) or by PortID (an unbound port
	// of the router's project; its address is the router's there). A
	// subnet the router is already on, or one overlapping another of its
	// subnets, is ErrConflict (Neutron's 400); a subnet without a gateway
	// asked by SubnetID is ErrInvalid.
	AddRouterInterface(ctx context.Context, routerID string, in RouterInterface) (RouterInterface, error)
	// RemoveRouterInterface undoes one, by SubnetID or PortID, deleting
	// its port. One a floating IP or a route relies on is ErrConflict.
	RemoveRouterInterface(ctx context.Context, routerID string, in RouterInterface) (RouterInterface, error)

	// CreateFloatingIP takes an address (spec.Address, or any free one)
	// on an external network, associated at once when spec names a port.
	CreateFloatingIP(ctx context.Context, spec FloatingIPSpec) (FloatingIP, error)
	GetFloatingIP(ctx context.Context, id string) (FloatingIP, error)
	ListFloatingIPs(ctx context.Context, opts ListOptions) ([]FloatingIP, error)
	// SetFloatingIPPort associates a floating IP with a port's fixed
	// address (fixedIP, or its first IPv4 one when empty), or disassociates
	// it when portID is empty. A port whose subnet no router joins to the
	// floating IP's network is ErrInvalid (Neutron: the external network
	// is not reachable from the subnet); a fixed address another floating
	// IP holds is ErrConflict.
	SetFloatingIPPort(ctx context.Context, id, portID, fixedIP string) (FloatingIP, error)
	DeleteFloatingIP(ctx context.Context, id string) error
}

// Device owners of the ports routers and floating IPs take, as Neutron
// names them.
const (
	OwnerRouterInterface = "network:router_interface"
	OwnerRouterGateway   = "network:router_gateway"
	OwnerFloatingIP      = "network:floatingip"
)

// Router is a Neutron router.
type Router struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Project      string `json:"project"`
	Status       string `json:"status"` // ACTIVE, DOWN, ERROR
	AdminStateUp bool   `json:"admin_state_up"`
	// Gateway is the router's way to an external network, nil when none.
	Gateway  *RouterGateway    `json:"gateway,omitempty"`
	Routes   []Route           `json:"routes,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// RouterGateway is a router's external gateway (Neutron's
// external_gateway_info).
type RouterGateway struct {
	NetworkID string `json:"network_id"`
	// EnableSNAT source-NATs what leaves by the gateway from the router's
	// subnets to the gateway's address. Floating IPs work either way.
	EnableSNAT bool `json:"enable_snat"`
	// FixedIPs are the router's addresses on the external network (read
	// back; a create or update may ask for some).
	FixedIPs []FixedIP `json:"fixed_ips,omitempty"`
}

// Route is a static route of a router (Neutron's extraroute).
type Route struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// Check reports, as ErrInvalid, a route that is not a prefix and an
// address of the same family.
func (r Route) Check() error {
	p, err := netip.ParsePrefix(r.Destination)
	if err != nil {
		return fmt.Errorf("route: destination %q is not a CIDR: %w", r.Destination, ErrInvalid)
	}
	a, err := netip.ParseAddr(r.NextHop)
	if err != nil || a.Is4() != p.Addr().Is4() {
		return fmt.Errorf("route: nexthop %q is not an address of %s's family: %w", r.NextHop, r.Destination, ErrInvalid)
	}
	return nil
}

// RouterSpec creates a router.
type RouterSpec struct {
	Name     string
	Project  string
	Gateway  *RouterGateway
	Metadata map[string]string
}

// RouterPatch changes a router; nil fields are left as they are.
type RouterPatch struct {
	Name *string
	// Gateway sets (or replaces) the gateway; ClearGateway removes it.
	Gateway      *RouterGateway
	ClearGateway bool
	Routes       *[]Route
}

// RouterInterface is a router's interface on a subnet. Asking, one of
// SubnetID and PortID names it; answered, all are set.
type RouterInterface struct {
	RouterID  string `json:"router_id,omitempty"`
	SubnetID  string `json:"subnet_id,omitempty"`
	PortID    string `json:"port_id,omitempty"`
	NetworkID string `json:"network_id,omitempty"`
}

// FloatingIP is an external address mapped onto a port's fixed address.
type FloatingIP struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	// NetworkID is the external network the address is on.
	NetworkID string `json:"network_id"`
	Address   string `json:"address"`
	// PortID and FixedIP are the association, empty when none; RouterID
	// is the router carrying it.
	PortID   string            `json:"port_id,omitempty"`
	FixedIP  string            `json:"fixed_ip,omitempty"`
	RouterID string            `json:"router_id,omitempty"`
	Status   string            `json:"status"` // ACTIVE when associated, else DOWN
	Metadata map[string]string `json:"metadata,omitempty"`
}

// FloatingIPSpec creates a floating IP.
type FloatingIPSpec struct {
	Project   string
	NetworkID string
	// Address asks for this address; empty takes any free one.
	Address string
	// PortID (and FixedIP) associate it at once.
	PortID   string
	FixedIP  string
	Metadata map[string]string
}
