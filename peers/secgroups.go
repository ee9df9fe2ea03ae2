package peers

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SecurityGroups is the optional ability to enforce the broker's security
// groups on ports, as Neutron's security groups do. The groups are the
// broker's: a cloud keeps a copy of each group the broker puts on it,
// keyed by the broker's group ID (a local cloud's records, a remote
// OpenStack's mirror group), and filters the traffic of every port in a
// group by its rules. A port in no group of this kind (Port.SecurityGroups
// nil) is the cloud's own business.
//
// A port in groups accepts the traffic some rule of one of its groups
// allows and drops the rest; rules are stateful (the answers to an allowed
// connection are allowed). A rule naming a remote group matches the
// addresses of this cloud's ports in that group: members on other clouds
// are not known here (their traffic crosses no network the two share).
type SecurityGroups interface {
	// PutSecurityGroup creates the cloud's copy of a group, or replaces its
	// name and rules: the ports in it follow at once, running guests
	// included. A rule's RemoteGroupID may name a group not put yet (two
	// groups may name each other): it matches no port until it is. An
	// invalid rule is ErrInvalid, and the copy is left as it was.
	PutSecurityGroup(ctx context.Context, g SecurityGroup) error
	// DeleteSecurityGroup removes a group's copy. A group a port is in is
	// ErrConflict; one the cloud does not hold ErrNotFound.
	DeleteSecurityGroup(ctx context.Context, id string) error
	// SetPortSecurityGroups makes exactly groups (IDs put before; an
	// unknown one is ErrNotFound) filter the port's traffic, at once for a
	// running guest. No groups drops everything (Neutron's port with
	// security_groups []). GetPort shows them in Port.SecurityGroups.
	SetPortSecurityGroups(ctx context.Context, portID string, groups []string) error
}

// SecurityGroup is the broker's security group as a cloud enforces it.
type SecurityGroup struct {
	// ID is the broker's group ID, the key of the cloud's copy.
	ID string `json:"id"`
	// Project is the broker project owning the group; Name its name (a
	// remote cloud's mirror shows them to its operators).
	Project string         `json:"project"`
	Name    string         `json:"name"`
	Rules   []SecurityRule `json:"rules"`
}

// SecurityRule allows one kind of traffic, as Neutron's security group
// rule does.
type SecurityRule struct {
	// Direction is "ingress" (to the port) or "egress" (from it).
	Direction string `json:"direction"`
	// EtherType is "IPv4" or "IPv6".
	EtherType string `json:"ethertype"`
	// Protocol is "" for any, or Neutron's lower-case name (tcp, udp,
	// icmp, icmpv6...), or a number 0-255 for another protocol.
	Protocol string `json:"protocol,omitempty"`
	// PortRangeMin and PortRangeMax bound the destination port (TCP, UDP,
	// SCTP...); for ICMP they are the type and the code. Nil is any.
	PortRangeMin *int `json:"port_range_min,omitempty"`
	PortRangeMax *int `json:"port_range_max,omitempty"`
	// RemoteIPPrefix (a CIDR) or RemoteGroupID (a group's ID: the
	// addresses of the ports in it) limits the other end; neither is any.
	RemoteIPPrefix string `json:"remote_ip_prefix,omitempty"`
	RemoteGroupID  string `json:"remote_group_id,omitempty"`
}

// ProtocolNumbers are the protocols Neutron knows by name, with their IP
// protocol numbers.
var ProtocolNumbers = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2, "ipip": 4,
	"ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43,
	"ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// Check reports, as ErrInvalid, what is wrong with a rule a cloud is
// asked to enforce (the broker validates rules as Neutron does before;
// this is the contract's floor).
func (r SecurityRule) Check() error {
	if r.Direction != "ingress" && r.Direction != "egress" {
		return fmt.Errorf("security rule: direction %q is not ingress or egress: %w", r.Direction, ErrInvalid)
	}
	if r.EtherType != "IPv4" && r.EtherType != "IPv6" {
		return fmt.Errorf("security rule: ethertype %q is not IPv4 or IPv6: %w", r.EtherType, ErrInvalid)
	}
	if _, err := r.ProtocolNumber(); err != nil {
		return err
	}
	if r.RemoteIPPrefix != "" {
		p, err := netip.ParsePrefix(r.RemoteIPPrefix)
		if err != nil || p.Addr().Is4() != (r.EtherType == "IPv4") {
			return fmt.Errorf("security rule: remote_ip_prefix %q is not an %s prefix: %w", r.RemoteIPPrefix, r.EtherType, ErrInvalid)
		}
		if r.RemoteGroupID != "" {
			return fmt.Errorf("security rule: both a remote prefix and a remote group: %w", ErrInvalid)
		}
	}
	for _, v := range []*int{r.PortRangeMin, r.PortRangeMax} {
		if v != nil && (*v < 0 || *v > 65535) {
			return fmt.Errorf("security rule: port %d out of range: %w", *v, ErrInvalid)
		}
	}
	if r.PortRangeMin != nil && r.PortRangeMax != nil && *r.PortRangeMin > *r.PortRangeMax {
		if n, _ := r.ProtocolNumber(); n != 1 && n != 58 { // ICMP's are a type and a code
			return fmt.Errorf("security rule: port range %d-%d: %w", *r.PortRangeMin, *r.PortRangeMax, ErrInvalid)
		}
	}
	return nil
}

// ProtocolNumber is the rule's IP protocol number, -1 for any.
func (r SecurityRule) ProtocolNumber() (int, error) {
	p := strings.ToLower(r.Protocol)
	if p == "" {
		return -1, nil
	}
	if n, ok := ProtocolNumbers[p]; ok {
		return n, nil
	}
	if n, err := strconv.Atoi(p); err == nil && n >= 0 && n <= 255 {
		return n, nil
	}
	return 0, fmt.Errorf("security rule: unknown protocol %q: %w", r.Protocol, ErrInvalid)
}
