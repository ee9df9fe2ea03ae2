package localcloud

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/cloudmux/cloudmux/peers"
)

// Security groups (peers.SecurityGroups): the broker's groups are records
// here (saved like the others), a port names its groups
// (peers.Port.SecurityGroups), and every port in groups that is bound to a
// server gets a filter on its server's host, compiled from the rules of
// its groups with remote groups expanded to the addresses of the ports in
// them (the FilterDriver's PortFilter: on the libvirt driver, the port's
// filter in the user-space switch, localcloud/vswitch).
// Any change that can alter a filter (a group's rules, a port's groups, a
// port or server coming or going) recompiles them all and hands the
// driver those that differ from what it last took, so running guests
// follow at once. Compiling reads memory only; a cloud of a few hundred
// ports recompiles in well under a millisecond.

// groupView copies a group for callers and the state file.
func groupView(g *peers.SecurityGroup) peers.SecurityGroup {
	v := *g
	v.Rules = slices.Clone(g.Rules)
	return v
}

// filterDriver is the driver's filtering, or an ErrInvalid saying there is
// none.
func (c *Cloud) filterDriver() (FilterDriver, error) {
	fd, ok := c.driver.(FilterDriver)
	if !ok {
		return nil, errf(peers.ErrInvalid, "the %s driver cannot filter traffic: security groups are not available", c.driver.Name())
	}
	return fd, nil
}

// PutSecurityGroup creates or replaces the copy of a broker group.
func (c *Cloud) PutSecurityGroup(ctx context.Context, g peers.SecurityGroup) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := c.filterDriver(); err != nil {
		return err
	}
	if g.ID == "" {
		return errf(peers.ErrInvalid, "security group: no ID")
	}
	for i, r := range g.Rules {
		if err := r.Check(); err != nil {
			return fmt.Errorf("security group %s rule %d: %w", g.ID, i, err)
		}
		if _, err := compileRule(r, func(string) []netip.Addr { return nil }); err != nil {
			return fmt.Errorf("security group %s rule %d: %w", g.ID, i, err)
		}
	}
	if err := c.begin(ctx); err != nil {
		return err
	}
	v := g
	v.Rules = slices.Clone(g.Rules)
	c.groups[g.ID] = &v
	c.markLocked(recGroup, g.ID)
	c.saveLocked()
	c.mu.Unlock()
	return c.syncFilters(ctx)
}

// DeleteSecurityGroup removes a group no port is in.
func (c *Cloud) DeleteSecurityGroup(ctx context.Context, id string) error {
	g, err := lockOne(c, ctx, "security group", c.groups, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	var users []string
	for _, p := range c.ports {
		if slices.Contains(p.SecurityGroups, id) {
			users = append(users, p.ID)
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return errf(peers.ErrConflict, "security group %s is in use by ports %s", g.ID, strings.Join(users, ", "))
	}
	delete(c.groups, id)
	c.markLocked(recGroup, id)
	c.saveLocked()
	return nil
}

// SetPortSecurityGroups puts a port in exactly groups.
func (c *Cloud) SetPortSecurityGroups(ctx context.Context, portID string, groups []string) error {
	p, err := lockOne(c, ctx, "port", c.ports, portID)
	if err != nil {
		return err
	}
	if err := c.checkGroupsLocked(groups); err != nil {
		c.mu.Unlock()
		return fmt.Errorf("port %s: %w", portID, err)
	}
	p.SecurityGroups = append([]string{}, groups...)
	c.markLocked(recPort, p.ID)
	c.saveLocked()
	c.mu.Unlock()
	return c.syncFilters(ctx)
}

// checkGroupsLocked refuses groups naming a group not put here; no groups
// at all (nil) is fine. Callers hold c.mu.
func (c *Cloud) checkGroupsLocked(groups []string) error {
	if groups == nil {
		return nil
	}
	if _, err := c.filterDriver(); err != nil {
		return err
	}
	for _, id := range groups {
		if c.groups[id] == nil {
			return notFound("security group", id)
		}
	}
	return nil
}

// filterState is what the driver last took for a port's filter.
type filterState struct {
	host, key string
}

// portFilter is a port's filter and the host it belongs on.
type portFilter struct {
	host   string
	filter PortFilter
}

// syncFilters hands the driver every port filter that differs from what it
// last took, and removes those of ports no longer filtered (their domain
// is gone, or they left every group). Calls are serialized, so the driver
// sees the filters in the order the changes were made.
func (c *Cloud) syncFilters(ctx context.Context) error {
	fd, ok := c.driver.(FilterDriver)
	if !ok {
		return nil
	}
	c.filterMu.Lock()
	defer c.filterMu.Unlock()
	c.mu.Lock()
	want := c.wantFiltersLocked()
	c.mu.Unlock()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(want)) {
		w := want[id]
		raw, _ := json.Marshal(w.filter)
		st := filterState{host: w.host, key: string(raw)}
		if c.filters[id] == st {
			continue
		}
		if err := fd.SetPortFilter(ctx, w.host, w.filter); err != nil {
			errs = append(errs, fmt.Errorf("port %s filter on %s: %w", id, w.host, err))
			continue
		}
		c.filters[id] = st
	}
	for id, st := range c.filters {
		if w, ok := want[id]; ok && w.host == st.host {
			continue
		}
		if err := ignoreNotFound(fd.DeletePortFilter(ctx, st.host, id)); err != nil {
			errs = append(errs, fmt.Errorf("port %s filter on %s: %w", id, st.host, err))
			continue
		}
		delete(c.filters, id)
	}
	return errors.Join(errs...)
}

// kickFiltersLocked recompiles the filters in the background, for changes
// made under c.mu that cannot wait for the driver (a server gone).
func (c *Cloud) kickFiltersLocked() {
	if c.closed {
		return
	}
	c.background(func(ctx context.Context) {
		if err := c.syncFilters(ctx); err != nil {
			c.log.WithError(err).Warn("updating the port filters failed; the next change retries")
		}
	})
}

// wantFiltersLocked compiles the filter of every port in groups bound to
// a server with a host. Callers hold c.mu.
func (c *Cloud) wantFiltersLocked() map[string]portFilter {
	members := map[string][]netip.Addr{}
	for _, p := range c.ports {
		for _, g := range p.SecurityGroups {
			for _, f := range p.FixedIPs {
				if a, err := netip.ParseAddr(f.IPAddress); err == nil {
					members[g] = append(members[g], a)
				}
			}
		}
	}
	of := func(g string) []netip.Addr { return members[g] }
	out := map[string]portFilter{}
	for _, s := range c.servers {
		if s.Host == "" {
			continue
		}
		for _, id := range s.ports {
			p := c.ports[id]
			if p == nil || p.SecurityGroups == nil {
				continue
			}
			f := PortFilter{PortID: p.ID, Accept: []FilterRule{}}
			for _, gid := range p.SecurityGroups {
				g := c.groups[gid]
				if g == nil {
					continue // checked when set; a group cannot go while a port is in it
				}
				for _, r := range g.Rules {
					rs, err := compileRule(r, of)
					if err != nil {
						continue // checked when put
					}
					f.Accept = append(f.Accept, rs...)
				}
			}
			slices.SortFunc(f.Accept, compareFilterRules)
			f.Accept = slices.Compact(f.Accept)
			out[p.ID] = portFilter{host: s.Host, filter: f}
		}
	}
	return out
}

func compareFilterRules(a, b FilterRule) int {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return cmp.Compare(string(x), string(y))
}

// filterable are the protocols a FilterRule can name, by number.
var filterable = map[int]string{1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 50: "esp", 51: "ah", 58: "icmpv6", 132: "sctp", 136: "udplite"}

// compileRule turns a group's rule into the filter rules it accepts, a
// remote group into one rule per address of its members (of).
func compileRule(r peers.SecurityRule, of func(group string) []netip.Addr) ([]FilterRule, error) {
	num, err := r.ProtocolNumber()
	if err != nil {
		return nil, err
	}
	v6 := r.EtherType == "IPv6"
	base := FilterRule{In: r.Direction == "ingress", IPv6: v6, ICMPType: -1, ICMPCode: -1}
	if num >= 0 {
		name, ok := filterable[num]
		if !ok {
			return nil, errf(peers.ErrInvalid, "protocol %s: the local cloud filters only tcp, udp, udplite, sctp, icmp, icmpv6, esp, ah and igmp", r.Protocol)
		}
		if name == "icmp" && v6 {
			name = "icmpv6" // Neutron's icmp with IPv6 means ICMPv6
		}
		if (name == "icmpv6") != v6 && (name == "icmp" || name == "icmpv6") {
			return nil, errf(peers.ErrInvalid, "protocol %s with ethertype %s", r.Protocol, r.EtherType)
		}
		base.Protocol = name
	}
	switch base.Protocol {
	case "tcp", "udp", "udplite", "sctp":
		if r.PortRangeMin != nil {
			base.PortMin = *r.PortRangeMin
			base.PortMax = *r.PortRangeMin
		}
		if r.PortRangeMax != nil {
			base.PortMax = *r.PortRangeMax
		}
	case "icmp", "icmpv6":
		if r.PortRangeMin != nil {
			base.ICMPType = *r.PortRangeMin
		}
		if r.PortRangeMax != nil && r.PortRangeMin != nil {
			base.ICMPCode = *r.PortRangeMax
		}
	}
	switch {
	case r.RemoteIPPrefix != "":
		p, err := netip.ParsePrefix(r.RemoteIPPrefix)
		if err != nil {
			return nil, errf(peers.ErrInvalid, "remote_ip_prefix %q", r.RemoteIPPrefix)
		}
		base.Remote = p.Masked()
		return []FilterRule{base}, nil
	case r.RemoteGroupID != "":
		var out []FilterRule
		for _, a := range of(r.RemoteGroupID) {
			if a.Is6() != v6 {
				continue
			}
			fr := base
			fr.Remote = netip.PrefixFrom(a, a.BitLen())
			out = append(out, fr)
		}
		return out, nil
	}
	return []FilterRule{base}, nil
}

var _ peers.SecurityGroups = (*Cloud)(nil)
