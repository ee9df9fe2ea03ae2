package vswitch

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/cloudmux/cloudmux/localcloud"
)

// protocols are the FilterRule protocol names by number.
var protocols = map[string]uint8{
	"tcp": protoTCP, "udp": protoUDP, "udplite": protoUDPLit, "sctp": protoSCTP,
	"icmp": protoICMP, "icmpv6": protoICMPv6, "esp": 50, "ah": 51, "igmp": 2,
}

// rule is a compiled localcloud.FilterRule.
type rule struct {
	in, v6     bool
	anyProto   bool
	proto      uint8
	portMin    uint16
	portMax    uint16
	icmpType   int16
	icmpCode   int16
	remote     netip.Prefix
	anyRemote  bool
	checkPorts bool
}

// filter is a port's compiled filter. gen tells filters apart: a tracked
// connection admitted under another generation is checked again.
type filter struct {
	gen   uint64
	rules []rule
}

var filterGen atomic.Uint64

// compile turns a port filter into rules.
func compile(f localcloud.PortFilter) (*filter, error) {
	out := &filter{gen: filterGen.Add(1)}
	for _, r := range f.Accept {
		c := rule{in: r.In, v6: r.IPv6, icmpType: int16(r.ICMPType), icmpCode: int16(r.ICMPCode)}
		if r.Protocol == "" {
			c.anyProto = true
		} else {
			n, ok := protocols[r.Protocol]
			if !ok {
				return nil, fmt.Errorf("port %s: protocol %q cannot be filtered", f.PortID, r.Protocol)
			}
			c.proto = n
		}
		switch r.Protocol {
		case "tcp", "udp", "udplite", "sctp":
			if r.PortMin > 0 {
				c.checkPorts = true
				c.portMin, c.portMax = uint16(r.PortMin), uint16(max(r.PortMin, r.PortMax))
			}
		case "icmp", "icmpv6":
		default:
			c.icmpType, c.icmpCode = -1, -1
		}
		if !r.Remote.IsValid() || r.Remote.Bits() == 0 {
			c.anyRemote = true
		} else {
			c.remote = r.Remote.Masked()
		}
		out.rules = append(out.rules, c)
	}
	return out, nil
}

// admits reports whether a rule of f accepts p going in (to the guest) or
// out.
func (f *filter) admits(p *packet, in bool) bool {
	remote := p.dst
	if in {
		remote = p.src
	}
	for i := range f.rules {
		r := &f.rules[i]
		if r.in != in || r.v6 != p.v6 {
			continue
		}
		if !r.anyProto && r.proto != p.proto {
			continue
		}
		if r.checkPorts && (p.dport < r.portMin || p.dport > r.portMax) {
			continue
		}
		if r.icmpType >= 0 && r.icmpType != p.icmpType {
			continue
		}
		if r.icmpType >= 0 && r.icmpCode >= 0 && r.icmpCode != p.icmpCode {
			continue
		}
		if !r.anyRemote && !r.remote.Contains(remote) {
			continue
		}
		return true
	}
	return false
}

// denyAll is the filter of a port known to be filtered whose filter has
// not arrived yet (a broker that just started): it fails closed.
func denyAll() *filter { return &filter{gen: filterGen.Add(1)} }
