package libvirt

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/localcloud"
	golibvirt "github.com/digitalocean/go-libvirt"
)

// A port's security groups become one libvirt network filter (nwfilter),
// named after the port, that its NIC references (<filterref>). libvirt
// compiles it into the host's ip(6)tables chains it keeps per guest
// interface (matched on that tap device only, so nothing else on the host
// is filtered) and, when a filter is defined again, rebuilds them for the
// running guests that use it: a rule change reaches them at once. The
// accept rules use libvirt's connection tracking (its default state
// match: a NEW connection in the rule's direction, and the ESTABLISHED
// answers back); everything else the guest sends or receives over IP is
// dropped, but IPv6 neighbour discovery (ARP is not IP and passes).
//
// Traffic between two guests on one bridge reaches ip(6)tables only when
// the host's bridge netfilter (br_netfilter, bridge-nf-call-iptables) is
// on; libvirt's nwfilter driver needs it, and the driver never changes it.

var filterNamespace = uuid.MustParse("4b0c7c3e-95a1-4d7e-8f0e-0a6f8a1c5d27")

type filterXML struct {
	XMLName xml.Name        `xml:"filter"`
	Name    string          `xml:"name,attr"`
	Chain   string          `xml:"chain,attr"`
	UUID    string          `xml:"uuid"`
	Rules   []filterRuleXML `xml:"rule"`
}

type filterRuleXML struct {
	Action    string `xml:"action,attr"`
	Direction string `xml:"direction,attr"`
	Priority  int    `xml:"priority,attr"`
	// StateMatch "false" turns libvirt's connection tracking off for a
	// rule (neighbour discovery is not a connection).
	StateMatch string `xml:"statematch,attr,omitempty"`
	// Match's element name is its XMLName.
	Match matchXML
}

// matchXML is one protocol element (<tcp>, <all-ipv6>...) with its
// attributes.
type matchXML struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
}

// filterProtocols are libvirt's element names for a FilterRule protocol,
// for IPv4 and IPv6.
var filterProtocols = map[string][2]string{
	"":        {"all", "all-ipv6"},
	"tcp":     {"tcp", "tcp-ipv6"},
	"udp":     {"udp", "udp-ipv6"},
	"udplite": {"udplite", "udplite-ipv6"},
	"sctp":    {"sctp", "sctp-ipv6"},
	"esp":     {"esp", "esp-ipv6"},
	"ah":      {"ah", "ah-ipv6"},
	"icmp":    {"icmp", ""},
	"icmpv6":  {"", "icmpv6"},
	"igmp":    {"igmp", ""},
}

// filterDoc is the nwfilter XML of a port's filter.
func filterDoc(name string, f localcloud.PortFilter) (string, error) {
	doc := filterXML{Name: name, Chain: "root", UUID: uuid.NewSHA1(filterNamespace, []byte(name)).String()}
	// IPv6 neighbour discovery, both ways, before anything is dropped.
	for _, typ := range []string{"133", "134", "135", "136"} {
		doc.Rules = append(doc.Rules, filterRuleXML{Action: "accept", Direction: "inout", Priority: 100, StateMatch: "false",
			Match: matchXML{XMLName: xml.Name{Local: "icmpv6"}, Attrs: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: typ}}}})
	}
	for _, r := range f.Accept {
		family := 0
		if r.IPv6 {
			family = 1
		}
		el := filterProtocols[r.Protocol][family]
		if el == "" {
			return "", fmt.Errorf("port %s: protocol %q with IPv6=%v: cannot be filtered", f.PortID, r.Protocol, r.IPv6)
		}
		m := matchXML{XMLName: xml.Name{Local: el}}
		attr := func(k, v string) { m.Attrs = append(m.Attrs, xml.Attr{Name: xml.Name{Local: k}, Value: v}) }
		if r.Remote.IsValid() && r.Remote.Bits() > 0 {
			// The remote end is the source of what comes in, the
			// destination of what goes out.
			side := "dst"
			if r.In {
				side = "src"
			}
			attr(side+"ipaddr", r.Remote.Addr().String())
			attr(side+"ipmask", strconv.Itoa(r.Remote.Bits()))
		}
		switch r.Protocol {
		case "tcp", "udp", "udplite", "sctp":
			if r.PortMin > 0 {
				attr("dstportstart", strconv.Itoa(r.PortMin))
				attr("dstportend", strconv.Itoa(max(r.PortMax, r.PortMin)))
			}
		case "icmp", "icmpv6":
			if r.ICMPType >= 0 {
				attr("type", strconv.Itoa(r.ICMPType))
				if r.ICMPCode >= 0 {
					attr("code", strconv.Itoa(r.ICMPCode))
				}
			}
		}
		dir := "out"
		if r.In {
			dir = "in"
		}
		doc.Rules = append(doc.Rules, filterRuleXML{Action: "accept", Direction: dir, Priority: 500, Match: m})
	}
	for _, el := range []string{"all", "all-ipv6"} {
		doc.Rules = append(doc.Rules, filterRuleXML{Action: "drop", Direction: "inout", Priority: 1000, Match: matchXML{XMLName: xml.Name{Local: el}}})
	}
	out, err := xml.MarshalIndent(doc, "", "  ")
	return string(out), err
}

// SetPortFilter defines (or redefines) the port's nwfilter; libvirt
// applies a redefinition to the running guests using it.
func (d *Driver) SetPortFilter(ctx context.Context, host string, f localcloud.PortFilter) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	doc, err := filterDoc(d.n.filter(f.PortID), f)
	if err != nil {
		return err
	}
	_, err = call(ctx, h, d.cfg.CallTimeout, "define the filter of port "+f.PortID, func(a API) (golibvirt.Nwfilter, error) {
		return a.NwfilterDefineXML(doc)
	})
	return err
}

// DeletePortFilter undefines a port's nwfilter; libvirt refuses while a
// domain references it (ErrConflict).
func (d *Driver) DeletePortFilter(ctx context.Context, host, portID string) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	to := d.cfg.CallTimeout
	nf, err := call(ctx, h, to, "look up the filter of port "+portID, func(a API) (golibvirt.Nwfilter, error) {
		return a.NwfilterLookupByName(d.n.filter(portID))
	})
	if err != nil {
		return err
	}
	return do(ctx, h, to, "undefine the filter of port "+portID, func(a API) error { return a.NwfilterUndefine(nf) })
}

var _ localcloud.FilterDriver = (*Driver)(nil)
