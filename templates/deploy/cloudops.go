package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
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

// createVia asks the service layer for the resource and returns its
// broker ID, plus attributes only the create answer carries (a generated
// private key, an attachment's device). The plan's peer and the
// template's labels go with it: the service's placement policy still
// decides, and refuses a peer it does not allow.
func (r *run) createVia(ctx context.Context, c resource.Caller, res *Resource, p props, marks map[string]string, defName string) (resource.Created, error) {
	rs := r.e.Resources
	name := p.str("name")
	if name == "" {
		name = defName
	}
	where := placementOf(res)
	switch res.Kind {
	case templates.KindNetwork:
		return rs.CreateNetwork(ctx, c, resource.NetworkSpec{Name: name, Shared: p.boolean("shared", false), MTU: p.num("mtu"),
			Placement: where, Marks: marks})
	case templates.KindSubnet:
		spec := resource.SubnetSpec{Name: name, Network: p.str("network"), CIDR: p.str("cidr"), IPVersion: p.num("ip_version"),
			EnableDHCP: p.boolean("enable_dhcp", true), DNSNameservers: p.strings("dns_nameservers"), Marks: marks, Peer: where.Peer}
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
		return rs.CreateSubnet(ctx, c, spec)
	case templates.KindPort:
		spec := resource.PortSpec{Name: name, Network: p.str("network"), Marks: marks, Peer: where.Peer}
		ips, _ := p["fixed_ips"].([]any)
		for _, e := range ips {
			m := props(asMap(e))
			spec.FixedIPs = append(spec.FixedIPs, resource.FixedIP{Subnet: m.str("subnet"), IPAddress: m.str("ip_address")})
		}
		return rs.CreatePort(ctx, c, spec)
	case templates.KindVolume:
		return rs.CreateVolume(ctx, c, resource.VolumeSpec{Name: name, Description: p.str("description"), SizeGiB: p.num("size"),
			VolumeType: p.str("volume_type"), Image: p.str("image"), Metadata: p.stringMap("metadata"), Placement: where, Marks: marks})
	case templates.KindVolumeAttachment:
		return rs.Attach(ctx, c, p.str("server"), p.str("volume"))
	case templates.KindKeypair:
		k, err := rs.CreateKeypair(ctx, c, resource.KeypairSpec{Name: p.str("name"), Type: p.str("type"), PublicKey: p.str("public_key")})
		if err != nil {
			return k, err
		}
		if !p.boolean("save_private_key", false) {
			delete(k.Attrs, "private_key")
		}
		return k, nil
	case templates.KindImage:
		return rs.CreateImage(ctx, c, resource.ImageSpec{Name: name, DiskFormat: orDefault(p.str("disk_format"), "qcow2"),
			ContainerFormat: orDefault(p.str("container_format"), "bare"), MinRAMMiB: p.num("min_ram"), MinDiskGiB: p.num("min_disk"),
			Visibility: orDefault(p.str("visibility"), "private"), Protected: p.boolean("protected", false), Tags: p.strings("tags"),
			Properties: p.stringMap("properties"), Placement: where, Marks: marks})
	case templates.KindServer:
		spec := resource.ServerSpec{Name: name, Flavor: p.str("flavor"), Image: p.str("image"), BootVolume: p.str("boot_volume"),
			KeyName: p.str("key_name"), UserData: []byte(p.str("user_data")), Metadata: p.stringMap("metadata"), Placement: where, Marks: marks}
		nets, _ := p["networks"].([]any)
		for _, n := range nets {
			m := props(asMap(n))
			spec.NICs = append(spec.NICs, resource.NIC{Network: m.str("network"), Port: m.str("port"), FixedIP: m.str("fixed_ip")})
		}
		return rs.CreateServer(ctx, c, spec)
	}
	return resource.Created{}, fmt.Errorf("%w: cannot create a %s", ErrInvalid, res.Kind)
}

// placementOf is what the plan decided for res: its peer, and the labels
// of the placement block it was chosen by.
func placementOf(res *Resource) resource.Placement {
	var p templates.Placement
	_ = json.Unmarshal([]byte(res.Placement), &p)
	return resource.Placement{Peer: res.PeerName, RequiredLabels: p.RequiredLabels, PreferredLabels: p.PreferredLabels}
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

// attachmentEnds are an attachment's server and volume (broker IDs).
func attachmentEnds(res *Resource) (server, volume string) {
	server, _ = res.Attrs["server_id"].(string)
	volume, _ = res.Attrs["volume_id"].(string)
	return server, volume
}

// settled reads the resource once: whether it reached its steady state,
// its attributes, or why it failed.
func (r *run) settled(ctx context.Context, c resource.Caller, res *Resource) (bool, map[string]any, error) {
	var st resource.State
	var err error
	if res.Kind == templates.KindVolumeAttachment {
		server, volume := attachmentEnds(res)
		st, err = r.e.Resources.Attached(ctx, c, server, volume)
	} else {
		st, err = r.e.Resources.Get(ctx, c, res.Kind, res.ID)
	}
	if err != nil {
		return false, nil, err
	}
	return st.Ready, st.Attrs, nil
}

// startDelete asks the service to remove the resource; gone reports
// whether it is. Not found is success: the work was done before.
func (r *run) startDelete(ctx context.Context, c resource.Caller, res *Resource, id string) error {
	var err error
	if res.Kind == templates.KindVolumeAttachment {
		server, volume := attachmentEnds(res)
		if server == "" || volume == "" {
			return nil
		}
		err = r.e.Resources.Detach(ctx, c, server, volume)
	} else {
		err = r.e.Resources.Delete(ctx, c, res.Kind, id)
	}
	if errors.Is(err, resource.ErrNotFound) {
		return nil
	}
	return err
}

func (r *run) gone(ctx context.Context, c resource.Caller, res *Resource, id string) (bool, error) {
	var err error
	if res.Kind == templates.KindVolumeAttachment {
		server, volume := attachmentEnds(res)
		_, err = r.e.Resources.Attached(ctx, c, server, volume)
	} else {
		_, err = r.e.Resources.Get(ctx, c, res.Kind, id)
	}
	if errors.Is(err, resource.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// tagged lists the broker IDs of the caller's resources of kind carrying
// every tag. Keypairs and attachments carry no metadata: none are found.
func (r *run) tagged(ctx context.Context, c resource.Caller, kind templates.Kind, tags map[string]string) ([]string, error) {
	if kind == templates.KindKeypair || kind == templates.KindVolumeAttachment {
		return nil, nil
	}
	return r.e.Resources.Find(ctx, c, kind, tags)
}

// sweepOrder deletes dependents before what they sit on.
var sweepOrder = []templates.Kind{templates.KindServer, templates.KindVolume, templates.KindPort,
	templates.KindSubnet, templates.KindNetwork, templates.KindImage}
