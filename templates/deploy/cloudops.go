package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/templates"
)

// props reads evaluated properties.
type props map[string]any

func (p props) str(k string) string {
	switch x := p[k].(type) {
	case string:
		return x
	case nil:
		return ""
	case []any:
		// A counted resource's get_resource is a list; a single reference
		// to it means its first replica.
		if len(x) > 0 {
			return fmt.Sprint(x[0])
		}
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func (p props) num(k string) int {
	switch x := p[k].(type) {
	case int64:
		return int(x)
	case float64:
		return int(x)
	case string:
		var n int
		_, _ = fmt.Sscan(x, &n)
		return n
	}
	return 0
}

func (p props) boolean(k string, def bool) bool {
	switch x := p[k].(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	}
	return def
}

func (p props) strings(k string) []string {
	l, _ := p[k].([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

func (p props) stringMap(k string) map[string]string {
	m, _ := p[k].(map[string]any)
	out := map[string]string{}
	for mk, v := range m {
		out[mk] = fmt.Sprint(v)
	}
	return out
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// create makes the resource on the peer and returns its ID, plus
// attributes only the create answer carries (a generated private key).
func (r *run) createOnPeer(ctx context.Context, c peers.Cloud, res *Resource, p props, tags map[string]string, project, defName string) (string, map[string]any, error) {
	name := p.str("name")
	if name == "" {
		name = defName
	}
	switch res.Kind {
	case templates.KindNetwork:
		n, err := c.CreateNetwork(ctx, peers.NetworkSpec{Name: name, Project: project, Shared: p.boolean("shared", false),
			MTU: p.num("mtu"), Metadata: merge(p.stringMap("metadata"), tags)})
		return n.ID, nil, err
	case templates.KindSubnet:
		netID, err := resolveNetwork(ctx, c, p.str("network"), project)
		if err != nil {
			return "", nil, err
		}
		spec := peers.SubnetSpec{Name: name, Project: project, NetworkID: netID, CIDR: p.str("cidr"), IPVersion: p.num("ip_version"),
			EnableDHCP: p.boolean("enable_dhcp", true), DNSNameservers: p.strings("dns_nameservers"), Metadata: merge(p.stringMap("metadata"), tags)}
		if spec.IPVersion == 0 {
			spec.IPVersion = 4
		}
		if gw, set := p["gateway_ip"]; set {
			if gw == nil || gw == "" || gw == "null" {
				spec.NoGateway = true
			} else {
				spec.GatewayIP = fmt.Sprint(gw)
			}
		}
		s, err := c.CreateSubnet(ctx, spec)
		return s.ID, nil, err
	case templates.KindPort:
		netID, err := resolveNetwork(ctx, c, p.str("network"), project)
		if err != nil {
			return "", nil, err
		}
		spec := peers.PortSpec{Name: name, Project: project, NetworkID: netID, Metadata: merge(p.stringMap("metadata"), tags)}
		ips, _ := p["fixed_ips"].([]any)
		for _, e := range ips {
			m := props(asMap(e))
			spec.FixedIPs = append(spec.FixedIPs, peers.FixedIP{SubnetID: m.str("subnet"), IPAddress: m.str("ip_address")})
		}
		port, err := c.CreatePort(ctx, spec)
		return port.ID, nil, err
	case templates.KindVolume:
		spec := peers.VolumeSpec{Name: name, Description: p.str("description"), Project: project, SizeGiB: p.num("size"),
			VolumeType: p.str("volume_type"), Metadata: merge(p.stringMap("metadata"), tags)}
		if img := p.str("image"); img != "" {
			i, err := resolveImage(ctx, c, img, project)
			if err != nil {
				return "", nil, err
			}
			spec.ImageID = i.ID
			if spec.SizeGiB == 0 {
				spec.SizeGiB = max(i.MinDiskGiB, int((i.Size+(1<<30)-1)>>30), 1)
			}
		}
		v, err := c.CreateVolume(ctx, spec)
		return v.ID, nil, err
	case templates.KindVolumeAttachment:
		a, err := c.AttachVolume(ctx, p.str("server"), p.str("volume"))
		if err != nil {
			return "", nil, err
		}
		id := a.ID
		if id == "" {
			id = a.VolumeID
		}
		return id, map[string]any{"server_id": p.str("server"), "volume_id": p.str("volume"), "device": a.Device}, nil
	case templates.KindKeypair:
		k, err := c.CreateKeypair(ctx, peers.KeypairSpec{Name: p.str("name"), Project: project, Type: p.str("type"), PublicKey: p.str("public_key")})
		if err != nil {
			return "", nil, err
		}
		extra := map[string]any{}
		if k.PrivateKey != "" && p.boolean("save_private_key", false) {
			extra["private_key"] = k.PrivateKey
		}
		return k.Name, extra, nil
	case templates.KindImage:
		props := merge(p.stringMap("properties"), tags)
		i, err := c.CreateImage(ctx, peers.ImageSpec{Name: name, Project: project, DiskFormat: orDefault(p.str("disk_format"), "qcow2"),
			ContainerFormat: orDefault(p.str("container_format"), "bare"), MinRAMMiB: p.num("min_ram"), MinDiskGiB: p.num("min_disk"),
			Visibility: orDefault(p.str("visibility"), "private"), Protected: p.boolean("protected", false), Tags: p.strings("tags"), Properties: props})
		return i.ID, nil, err
	case templates.KindServer:
		return r.createServer(ctx, c, p, tags, project, name)
	}
	return "", nil, fmt.Errorf("%w: cannot create a %s", peers.ErrNotSupported, res.Kind)
}

func (r *run) createServer(ctx context.Context, c peers.Cloud, p props, tags map[string]string, project, name string) (string, map[string]any, error) {
	flavors, err := c.ListFlavors(ctx)
	if err != nil {
		return "", nil, err
	}
	fl, ok := findFlavor(flavors, p.str("flavor"))
	if !ok {
		return "", nil, fmt.Errorf("%w: unknown flavor %q", peers.ErrInvalid, p.str("flavor"))
	}
	spec := peers.ServerSpec{Name: name, Project: project, FlavorID: fl.ID, KeyName: p.str("key_name"),
		UserData: []byte(p.str("user_data")), Metadata: merge(p.stringMap("metadata"), tags), BootVolumeID: p.str("boot_volume")}
	if img := p.str("image"); img != "" {
		i, err := resolveImage(ctx, c, img, project)
		if err != nil {
			return "", nil, err
		}
		spec.ImageID = i.ID
	}
	nets, _ := p["networks"].([]any)
	for _, n := range nets {
		m := props(asMap(n))
		if port := m.str("port"); port != "" {
			spec.Networks = append(spec.Networks, peers.NetworkAttachment{PortID: port})
			continue
		}
		id, err := resolveNetwork(ctx, c, m.str("network"), project)
		if err != nil {
			return "", nil, err
		}
		spec.Networks = append(spec.Networks, peers.NetworkAttachment{NetworkID: id, FixedIP: m.str("fixed_ip")})
	}
	s, err := c.CreateServer(ctx, spec)
	return s.ID, nil, err
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// resolveNetwork takes a network ID (what get_resource gives) or the name
// of a network the project may use (its own or a shared one).
func resolveNetwork(ctx context.Context, c peers.Cloud, ref, project string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%w: no network given", peers.ErrInvalid)
	}
	if n, err := c.GetNetwork(ctx, ref); err == nil && (n.Project == project || n.Shared) {
		return n.ID, nil
	}
	nets, err := c.ListNetworks(ctx, peers.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, n := range nets {
		if n.Name == ref && (n.Project == project || n.Shared) {
			return n.ID, nil
		}
	}
	return "", fmt.Errorf("%w: network %q", peers.ErrNotFound, ref)
}

func resolveImage(ctx context.Context, c peers.Cloud, ref, project string) (peers.Image, error) {
	if i, err := c.GetImage(ctx, ref); err == nil {
		return i, nil
	}
	imgs, err := c.ListImages(ctx, peers.ListOptions{})
	if err != nil {
		return peers.Image{}, err
	}
	if i, ok := findImage(imgs, ref, project); ok {
		return i, nil
	}
	return peers.Image{}, fmt.Errorf("%w: image %q", peers.ErrNotFound, ref)
}

// settled reads the resource once: whether it reached its steady state,
// its attributes, or why it failed.
func settled(ctx context.Context, c peers.Cloud, res *Resource) (bool, map[string]any, error) {
	a := map[string]any{}
	switch res.Kind {
	case templates.KindServer:
		s, err := c.GetServer(ctx, res.ID)
		if err != nil {
			return false, nil, err
		}
		if s.Status == peers.ServerError {
			return false, nil, fmt.Errorf("server %s went to ERROR: %s", s.ID, s.Fault)
		}
		a["name"], a["status"], a["host"], a["flavor"], a["image"] = s.Name, string(s.Status), s.Host, s.FlavorID, s.ImageID
		addrs, nets := map[string]any{}, map[string]any{}
		first := ""
		for _, ad := range s.Addresses {
			addrs[ad.Network] = append(asList(addrs[ad.Network]), map[string]any{"addr": ad.Addr, "version": int64(ad.Version), "mac": ad.MAC})
			nets[ad.Network] = append(asList(nets[ad.Network]), ad.Addr)
			if first == "" && ad.Version == 4 {
				first = ad.Addr
			}
		}
		a["addresses"], a["networks"], a["first_address"] = addrs, nets, first
		return s.Status == peers.ServerActive, a, nil
	case templates.KindVolume:
		v, err := c.GetVolume(ctx, res.ID)
		if err != nil {
			return false, nil, err
		}
		if v.Status == peers.VolumeError {
			return false, nil, fmt.Errorf("volume %s went to error", v.ID)
		}
		a["name"], a["size"], a["status"] = v.Name, int64(v.SizeGiB), string(v.Status)
		return v.Status == peers.VolumeAvailable || v.Status == peers.VolumeInUse, a, nil
	case templates.KindVolumeAttachment:
		volID, _ := res.Attrs["volume_id"].(string)
		v, err := c.GetVolume(ctx, volID)
		if err != nil {
			return false, nil, err
		}
		if v.Status == peers.VolumeError {
			return false, nil, fmt.Errorf("volume %s went to error while attaching", v.ID)
		}
		for _, at := range v.Attachments {
			if res.Attrs["server_id"] == at.ServerID {
				a["device"] = at.Device
			}
		}
		return v.Status == peers.VolumeInUse, a, nil
	case templates.KindNetwork:
		n, err := c.GetNetwork(ctx, res.ID)
		if err != nil {
			return false, nil, err
		}
		a["name"], a["status"], a["mtu"] = n.Name, n.Status, int64(n.MTU)
		subs := []any{}
		for _, s := range n.Subnets {
			subs = append(subs, s)
		}
		a["subnets"] = subs
		return true, a, nil
	case templates.KindSubnet:
		s, err := c.GetSubnet(ctx, res.ID)
		if err != nil {
			return false, nil, err
		}
		a["name"], a["cidr"], a["gateway_ip"], a["network_id"] = s.Name, s.CIDR, s.GatewayIP, s.NetworkID
		return true, a, nil
	case templates.KindPort:
		p, err := c.GetPort(ctx, res.ID)
		if err != nil {
			return false, nil, err
		}
		ips := []any{}
		for _, ip := range p.FixedIPs {
			ips = append(ips, map[string]any{"subnet_id": ip.SubnetID, "ip_address": ip.IPAddress})
			if a["ip_address"] == nil {
				a["ip_address"] = ip.IPAddress
			}
		}
		a["name"], a["mac_address"], a["fixed_ips"], a["network_id"], a["status"] = p.Name, p.MACAddress, ips, p.NetworkID, p.Status
		return true, a, nil
	case templates.KindKeypair:
		k, err := c.GetKeypair(ctx, res.ID)
		if err != nil {
			return false, nil, err
		}
		a["name"], a["public_key"], a["fingerprint"] = k.Name, k.PublicKey, k.Fingerprint
		return true, a, nil
	case templates.KindImage:
		i, err := c.GetImage(ctx, res.ID)
		if err != nil {
			return false, nil, err
		}
		a["name"], a["status"] = i.Name, string(i.Status)
		return true, a, nil
	}
	return true, a, nil
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// startDelete asks the peer to remove the resource; gone reports whether
// it is. Not found is success: the work was done before.
func startDelete(ctx context.Context, c peers.Cloud, res *Resource, id string) error {
	var err error
	switch res.Kind {
	case templates.KindServer:
		err = c.DeleteServer(ctx, id)
	case templates.KindVolume:
		err = c.DeleteVolume(ctx, id)
	case templates.KindVolumeAttachment:
		server, _ := res.Attrs["server_id"].(string)
		volume, _ := res.Attrs["volume_id"].(string)
		if server == "" || volume == "" {
			return nil
		}
		err = c.DetachVolume(ctx, server, volume)
		if errors.Is(err, peers.ErrConflict) || errors.Is(err, peers.ErrInvalid) {
			// Not attached (any more): the server went first, or a detach runs.
			if v, gerr := c.GetVolume(ctx, volume); gerr == nil && !attachedTo(v, server) {
				err = nil
			}
		}
	case templates.KindNetwork:
		err = c.DeleteNetwork(ctx, id)
	case templates.KindSubnet:
		err = c.DeleteSubnet(ctx, id)
	case templates.KindPort:
		err = c.DeletePort(ctx, id)
	case templates.KindKeypair:
		err = c.DeleteKeypair(ctx, id)
	case templates.KindImage:
		err = c.DeleteImage(ctx, id)
	}
	if errors.Is(err, peers.ErrNotFound) {
		return nil
	}
	return err
}

func attachedTo(v peers.Volume, server string) bool {
	for _, a := range v.Attachments {
		if a.ServerID == server {
			return true
		}
	}
	return false
}

func gone(ctx context.Context, c peers.Cloud, res *Resource, id string) (bool, error) {
	var err error
	switch res.Kind {
	case templates.KindServer:
		_, err = c.GetServer(ctx, id)
	case templates.KindVolume:
		_, err = c.GetVolume(ctx, id)
	case templates.KindVolumeAttachment:
		volume, _ := res.Attrs["volume_id"].(string)
		server, _ := res.Attrs["server_id"].(string)
		v, gerr := c.GetVolume(ctx, volume)
		if errors.Is(gerr, peers.ErrNotFound) {
			return true, nil
		}
		if gerr != nil {
			return false, gerr
		}
		return !attachedTo(v, server) && v.Status != peers.VolumeDetaching, nil
	case templates.KindNetwork:
		_, err = c.GetNetwork(ctx, id)
	case templates.KindSubnet:
		_, err = c.GetSubnet(ctx, id)
	case templates.KindPort:
		_, err = c.GetPort(ctx, id)
	case templates.KindKeypair:
		_, err = c.GetKeypair(ctx, id)
	case templates.KindImage:
		_, err = c.GetImage(ctx, id)
	}
	if errors.Is(err, peers.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// tagged lists the IDs of the resources of kind carrying every tag.
// Keypairs and attachments carry no metadata: none are found.
func tagged(ctx context.Context, c peers.Cloud, kind templates.Kind, tags map[string]string) ([]string, error) {
	opts := peers.ListOptions{Metadata: tags}
	var ids []string
	switch kind {
	case templates.KindServer:
		l, err := c.ListServers(ctx, opts)
		for _, x := range l {
			if x.Status != peers.ServerDeleted {
				ids = append(ids, x.ID)
			}
		}
		return ids, err
	case templates.KindVolume:
		l, err := c.ListVolumes(ctx, opts)
		for _, x := range l {
			ids = append(ids, x.ID)
		}
		return ids, err
	case templates.KindNetwork:
		l, err := c.ListNetworks(ctx, opts)
		for _, x := range l {
			ids = append(ids, x.ID)
		}
		return ids, err
	case templates.KindSubnet:
		l, err := c.ListSubnets(ctx, opts)
		for _, x := range l {
			ids = append(ids, x.ID)
		}
		return ids, err
	case templates.KindPort:
		l, err := c.ListPorts(ctx, opts)
		for _, x := range l {
			ids = append(ids, x.ID)
		}
		return ids, err
	case templates.KindImage:
		l, err := c.ListImages(ctx, opts)
		for _, x := range l {
			ids = append(ids, x.ID)
		}
		return ids, err
	}
	return nil, nil
}

// sweepOrder deletes dependents before what they sit on.
var sweepOrder = []templates.Kind{templates.KindServer, templates.KindVolume, templates.KindPort,
	templates.KindSubnet, templates.KindNetwork, templates.KindImage}
