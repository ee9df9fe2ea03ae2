package openstack

import (
	"context"
	"fmt"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cloudmux/cloudmux/peers"
)

// Security groups (peers.SecurityGroups): each broker group the broker
// puts here has a mirror group in the remote project, named
// mirrorPrefix + the broker group's ID, whose rules are kept equal to the
// broker group's (a remote group rule names the remote group's mirror,
// made empty if it does not exist yet). Ports the broker makes, and the
// ports Nova makes for a server booted with groups, are put in mirrors
// only, never in the remote project's own default group. The mirror IDs
// are found by name (one list call) and remembered.

// mirrorPrefix starts a mirror group's name.
const mirrorPrefix = "cloudmux-sg-"

func mirrorName(id string) string { return mirrorPrefix + id }

// mirror returns the ID of a broker group's mirror, making an empty one
// when create is set and there is none.
func (c *Cloud) mirror(ctx context.Context, g peers.SecurityGroup, create bool) (string, error) {
	c.mu.Lock()
	id, ok := c.mirrors[g.ID]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	pages, err := groups.List(c.network, groups.ListOpts{Name: mirrorName(g.ID), ProjectID: c.project}).AllPages(ctx)
	if err != nil {
		return "", c.translate("neutron: find security group "+mirrorName(g.ID), err)
	}
	found, err := groups.ExtractGroups(pages)
	if err != nil {
		return "", c.translate("neutron: find security group "+mirrorName(g.ID), err)
	}
	switch {
	case len(found) > 0:
		id = found[0].ID
	case !create:
		return "", fmt.Errorf("security group %s: %w", g.ID, peers.ErrNotFound)
	default:
		made, err := groups.Create(ctx, c.network, groups.CreateOpts{Name: mirrorName(g.ID),
			Description: fmt.Sprintf("cloudmux: security group %q of broker project %s", g.Name, g.Project)}).Extract()
		if err != nil {
			return "", c.translate("neutron: create security group "+mirrorName(g.ID), err)
		}
		id = made.ID
	}
	c.mu.Lock()
	c.mirrors[g.ID] = id
	c.mu.Unlock()
	return id, nil
}

// ruleKey says what traffic a remote rule matches.
func ruleKey(direction, ethertype, protocol string, lo, hi int, prefix, remote string) string {
	return strings.Join([]string{direction, ethertype, strings.ToLower(protocol), fmt.Sprint(lo), fmt.Sprint(hi), prefix, remote}, "|")
}

// PutSecurityGroup makes the group's mirror and its rules equal to g's.
func (c *Cloud) PutSecurityGroup(ctx context.Context, g peers.SecurityGroup) error {
	if err := c.needNetwork(); err != nil {
		return err
	}
	for i, r := range g.Rules {
		if err := r.Check(); err != nil {
			return fmt.Errorf("security group %s rule %d: %w", g.ID, i, err)
		}
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	id, err := c.mirror(ctx, g, true)
	if err != nil {
		return err
	}
	want := map[string]rules.CreateOpts{}
	for _, r := range g.Rules {
		o := rules.CreateOpts{Direction: rules.RuleDirection(r.Direction), EtherType: rules.RuleEtherType(r.EtherType), SecGroupID: id,
			Protocol: rules.RuleProtocol(r.Protocol), RemoteIPPrefix: r.RemoteIPPrefix}
		if r.PortRangeMin != nil {
			o.PortRangeMin = *r.PortRangeMin
		}
		if r.PortRangeMax != nil {
			o.PortRangeMax = *r.PortRangeMax
		}
		if r.RemoteGroupID != "" {
			if o.RemoteGroupID, err = c.mirror(ctx, peers.SecurityGroup{ID: r.RemoteGroupID, Project: g.Project}, true); err != nil {
				return err
			}
		}
		want[ruleKey(string(o.Direction), string(o.EtherType), string(o.Protocol), o.PortRangeMin, o.PortRangeMax, o.RemoteIPPrefix, o.RemoteGroupID)] = o
	}
	pages, err := rules.List(c.network, rules.ListOpts{SecGroupID: id}).AllPages(ctx)
	if err != nil {
		return c.translate("neutron: list security group rules of "+id, err)
	}
	have, err := rules.ExtractRules(pages)
	if err != nil {
		return c.translate("neutron: list security group rules of "+id, err)
	}
	for _, r := range have {
		k := ruleKey(r.Direction, r.EtherType, r.Protocol, r.PortRangeMin, r.PortRangeMax, r.RemoteIPPrefix, r.RemoteGroupID)
		if _, ok := want[k]; ok {
			delete(want, k)
			continue
		}
		if err := rules.Delete(ctx, c.network, r.ID).ExtractErr(); err != nil {
			return c.translate("neutron: delete security group rule "+r.ID, err)
		}
	}
	for _, o := range want {
		if _, err := rules.Create(ctx, c.network, o).Extract(); err != nil {
			return c.translate("neutron: create a rule of security group "+id, err)
		}
	}
	return nil
}

// DeleteSecurityGroup deletes a group's mirror (Neutron refuses one a
// port is in: ErrConflict).
func (c *Cloud) DeleteSecurityGroup(ctx context.Context, id string) error {
	if err := c.needNetwork(); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	mid, err := c.mirror(ctx, peers.SecurityGroup{ID: id}, false)
	if err != nil {
		return err
	}
	if err := groups.Delete(ctx, c.network, mid).ExtractErr(); err != nil {
		return c.translate("neutron: delete security group "+mid, err)
	}
	c.mu.Lock()
	delete(c.mirrors, id)
	c.mu.Unlock()
	return nil
}

// mirrorIDs maps broker group IDs to their mirrors; a group never put is
// ErrNotFound.
func (c *Cloud) mirrorIDs(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		mid, err := c.mirror(ctx, peers.SecurityGroup{ID: id}, false)
		if err != nil {
			return nil, err
		}
		out = append(out, mid)
	}
	return out, nil
}

// SetPortSecurityGroups puts a port in exactly the groups' mirrors.
func (c *Cloud) SetPortSecurityGroups(ctx context.Context, portID string, ids []string) error {
	if err := c.needNetwork(); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	mids, err := c.mirrorIDs(ctx, ids)
	if err != nil {
		return err
	}
	if _, err := ports.Update(ctx, c.network, portID, ports.UpdateOpts{SecurityGroups: &mids}).Extract(); err != nil {
		return c.translate("neutron: update port "+portID, err)
	}
	return nil
}

// mirrorIndex maps the remote project's mirror groups' IDs to their
// broker groups (one list call), for showing ports' groups.
func (c *Cloud) mirrorIndex(ctx context.Context) (map[string]string, error) {
	pages, err := groups.List(c.network, groups.ListOpts{ProjectID: c.project}).AllPages(ctx)
	if err != nil {
		return nil, c.translate("neutron: list security groups", err)
	}
	all, err := groups.ExtractGroups(pages)
	if err != nil {
		return nil, c.translate("neutron: list security groups", err)
	}
	out := map[string]string{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range all {
		if b, ok := strings.CutPrefix(g.Name, mirrorPrefix); ok {
			out[g.ID] = b
			c.mirrors[b] = g.ID
		}
	}
	return out, nil
}

// brokerGroups are the broker groups of a remote port's groups (its
// mirrors), nil when it is in none.
func brokerGroups(index map[string]string, remote []string) []string {
	var out []string
	for _, r := range remote {
		if b, ok := index[r]; ok {
			out = append(out, b)
		}
	}
	return out
}

var _ peers.SecurityGroups = (*Cloud)(nil)
