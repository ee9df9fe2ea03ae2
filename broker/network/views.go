package network

// Neutron's timestamp format.
const stamp = "2006-01-02T15:04:05Z"

// standard are the attributes every Neutron resource carries.
func standard(ref Ref, a Attrs) map[string]any {
	created := ref.CreatedAt
	if created.IsZero() {
		created = epoch
	}
	updated := a.UpdatedAt
	if updated.IsZero() {
		updated = created
	}
	rev := a.Revision
	if rev == 0 {
		rev = 1
	}
	return map[string]any{
		"id": ref.ID, "tenant_id": ref.Project, "project_id": ref.Project,
		"description": a.Description, "tags": []string{},
		"created_at": created.UTC().Format(stamp), "updated_at": updated.UTC().Format(stamp),
		"revision_number": rev,
	}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func networkView(n Network) map[string]any {
	out := standard(n.Ref, n.Attrs)
	out["name"] = n.Attrs.name(n.Peer.Name)
	out["admin_state_up"] = n.Attrs.adminUp()
	out["status"] = n.Peer.Status
	out["mtu"] = n.Peer.MTU
	out["shared"] = n.Peer.Shared
	out["router:external"] = n.Peer.External
	out["subnets"] = orEmpty(n.SubnetIDs)
	out["availability_zone_hints"] = orEmpty(n.Attrs.ZoneHints)
	out["availability_zones"] = []string{n.Ref.Member.Peer.Name}
	out["ipv4_address_scope"] = nil
	out["ipv6_address_scope"] = nil
	return out
}

func subnetView(sn Subnet) map[string]any {
	out := standard(sn.Ref, sn.Attrs)
	p := sn.Peer
	out["name"] = sn.Attrs.name(p.Name)
	out["network_id"] = sn.NetworkID
	out["ip_version"] = p.IPVersion
	out["cidr"] = p.CIDR
	out["gateway_ip"] = nil
	if p.GatewayIP != "" {
		out["gateway_ip"] = p.GatewayIP
	}
	out["enable_dhcp"] = p.EnableDHCP
	pools := []map[string]string{}
	for _, r := range p.AllocationPools {
		pools = append(pools, map[string]string{"start": r.Start, "end": r.End})
	}
	out["allocation_pools"] = pools
	out["dns_nameservers"] = orEmpty(p.DNSNameservers)
	out["host_routes"] = []any{}
	out["service_types"] = []any{}
	out["ipv6_ra_mode"] = nil
	out["ipv6_address_mode"] = nil
	out["subnetpool_id"] = nil
	out["segment_id"] = nil
	return out
}

func portView(p Port) map[string]any {
	out := standard(p.Ref, p.Attrs)
	out["name"] = p.Attrs.name(p.Peer.Name)
	out["network_id"] = p.NetworkID
	out["mac_address"] = p.Peer.MACAddress
	out["admin_state_up"] = p.Attrs.adminUp()
	out["status"] = p.Peer.Status
	out["device_id"] = p.DeviceID
	out["device_owner"] = p.Peer.DeviceOwner
	fixed := []map[string]string{}
	for _, f := range p.FixedIPs {
		fixed = append(fixed, map[string]string{"subnet_id": f.SubnetID, "ip_address": f.IPAddress})
	}
	out["fixed_ips"] = fixed
	groups := p.Attrs.SecurityGroups
	if groups == nil {
		groups = []string{DefaultSecurityGroupID(p.Ref.Project)}
	}
	out["security_groups"] = groups
	out["allowed_address_pairs"] = []any{}
	out["extra_dhcp_opts"] = []any{}
	return out
}

func groupView(g SecurityGroup) map[string]any {
	rules := []map[string]any{}
	for _, r := range g.Rules {
		rules = append(rules, ruleView(g, r))
	}
	return map[string]any{
		"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.Project, "project_id": g.Project,
		"stateful": g.Stateful, "shared": false, "security_group_rules": rules, "tags": []string{},
		"created_at": g.CreatedAt.UTC().Format(stamp), "updated_at": g.UpdatedAt.UTC().Format(stamp), "revision_number": g.Revision,
	}
}

func ruleView(g SecurityGroup, r SecurityGroupRule) map[string]any {
	nilIf := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	port := func(p *int) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return map[string]any{
		"id": r.ID, "security_group_id": g.ID, "direction": r.Direction, "ethertype": r.EtherType,
		"protocol": nilIf(r.Protocol), "port_range_min": port(r.PortRangeMin), "port_range_max": port(r.PortRangeMax),
		"remote_ip_prefix": nilIf(r.RemoteIPPrefix), "remote_group_id": nilIf(r.RemoteGroupID), "remote_address_group_id": nil,
		"normalized_cidr": nilIf(r.RemoteIPPrefix), "description": r.Description,
		"tenant_id": g.Project, "project_id": g.Project, "belongs_to_default_sg": g.Name == DefaultSecurityGroup,
		"created_at": r.CreatedAt.UTC().Format(stamp), "updated_at": r.CreatedAt.UTC().Format(stamp), "revision_number": 0,
	}
}
