package libvirt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/kdomanski/iso9660"

	"github.com/cloudmux/cloudmux/localcloud"
)

// ConfigDriveLabel is the volume label cloud-init looks for.
const ConfigDriveLabel = "config-2"

// serverMetaPrefix marks the server's own metadata among DomainSpec's
// (localcloud puts its bookkeeping under "localcloud.").
const serverMetaPrefix = "server."

// MetaData is openstack/latest/meta_data.json, the fields cloud-init reads.
type MetaData struct {
	UUID             string            `json:"uuid"`
	Name             string            `json:"name"`
	Hostname         string            `json:"hostname"`
	AvailabilityZone string            `json:"availability_zone"`
	ProjectID        string            `json:"project_id,omitempty"`
	LaunchIndex      int               `json:"launch_index"`
	PublicKeys       map[string]string `json:"public_keys,omitempty"`
	Keys             []MetaDataKey     `json:"keys,omitempty"`
	Meta             map[string]string `json:"meta"`
}

// MetaDataKey is one entry of meta_data.json's keys.
type MetaDataKey struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// NetworkData is openstack/latest/network_data.json: static addresses,
// since the isolated networks run no DHCP.
type NetworkData struct {
	Links    []NetLink    `json:"links"`
	Networks []NetNetwork `json:"networks"`
	Services []any        `json:"services"`
}

// NetLink is one NIC.
type NetLink struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	MAC  string `json:"ethernet_mac_address"`
	MTU  int    `json:"mtu,omitempty"`
}

// NetNetwork is one address on a NIC.
type NetNetwork struct {
	ID        string     `json:"id"`
	Link      string     `json:"link"`
	Type      string     `json:"type"` // ipv4, ipv6
	IPAddress string     `json:"ip_address"`
	Netmask   string     `json:"netmask"`
	Routes    []NetRoute `json:"routes"`
	NetworkID string     `json:"network_id"`
}

// NetRoute is a route of a NetNetwork.
type NetRoute struct {
	Network string `json:"network"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
}

var notHostname = regexp.MustCompile(`[^a-z0-9-]+`)

// hostname makes a server name a valid host name, as Nova does.
func hostname(name string) string {
	h := strings.Trim(notHostname.ReplaceAllString(strings.ToLower(name), "-"), "-")
	h = strings.Trim(truncate(h, 63), "-")
	if h == "" {
		return "server"
	}
	return h
}

// guestHostname is the hostname asked for, else one made of the name.
func guestHostname(spec localcloud.DomainSpec) string {
	if h := spec.Metadata[localcloud.MetaHostname]; h != "" {
		return h
	}
	return hostname(spec.Name)
}

// configDriveFiles returns the files of spec's config drive, by path.
func configDriveFiles(spec localcloud.DomainSpec) (map[string][]byte, error) {
	md := MetaData{
		UUID: spec.ID, Name: spec.Name, Hostname: guestHostname(spec), AvailabilityZone: "nova",
		ProjectID: spec.Metadata["localcloud.project"], Meta: map[string]string{},
	}
	for k, v := range spec.Metadata {
		if rest, ok := strings.CutPrefix(k, serverMetaPrefix); ok {
			md.Meta[rest] = v
		}
	}
	if spec.PublicKey != "" {
		key := strings.TrimSpace(spec.PublicKey)
		md.PublicKeys = map[string]string{spec.KeyName: key}
		md.Keys = []MetaDataKey{{Name: spec.KeyName, Type: "ssh", Data: key}}
	}
	nd := NetworkData{Links: []NetLink{}, Networks: []NetNetwork{}, Services: []any{}}
	for i, nic := range spec.NICs {
		link := fmt.Sprintf("tap%s", truncate(nic.PortID, 11))
		nd.Links = append(nd.Links, NetLink{ID: link, Type: "phy", MAC: nic.MAC})
		for j, cidr := range nic.IPs {
			p, err := netip.ParsePrefix(cidr)
			if err != nil {
				return nil, fmt.Errorf("NIC %d address %q: %w", i, cidr, err)
			}
			n := NetNetwork{ID: fmt.Sprintf("network%d", len(nd.Networks)), Link: link, IPAddress: p.Addr().String(), NetworkID: nic.NetworkID, Routes: []NetRoute{}}
			if p.Addr().Is4() {
				n.Type = "ipv4"
				mask := ^uint32(0) << (32 - p.Bits())
				n.Netmask = fmt.Sprintf("%d.%d.%d.%d", mask>>24, mask>>16&0xff, mask>>8&0xff, mask&0xff)
				if nic.Gateway != "" && j == 0 && i == 0 {
					n.Routes = append(n.Routes, NetRoute{Network: "0.0.0.0", Netmask: "0.0.0.0", Gateway: nic.Gateway})
				}
			} else {
				n.Type, n.Netmask = "ipv6", fmt.Sprint(p.Bits())
			}
			nd.Networks = append(nd.Networks, n)
		}
	}
	mdj, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, err
	}
	ndj, err := json.MarshalIndent(nd, "", "  ")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"openstack/latest/meta_data.json":    mdj,
		"openstack/latest/network_data.json": ndj,
	}
	if len(spec.UserData) > 0 {
		files["openstack/latest/user_data"] = spec.UserData
	}
	return files, nil
}

// buildConfigDrive writes spec's config drive, an ISO 9660 image labelled
// config-2, to a temporary file and returns it open at its start with its
// size; the caller closes and removes it.
func buildConfigDrive(spec localcloud.DomainSpec) (*os.File, int64, error) {
	files, err := configDriveFiles(spec)
	if err != nil {
		return nil, 0, err
	}
	w, err := iso9660.NewWriter()
	if err != nil {
		return nil, 0, fmt.Errorf("config drive: %w", err)
	}
	defer w.Cleanup()
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		if err := w.AddFile(bytes.NewReader(files[p]), p); err != nil {
			return nil, 0, fmt.Errorf("config drive: adding %s: %w", p, err)
		}
	}
	f, err := os.CreateTemp("", "cloudmux-config-*.iso")
	if err != nil {
		return nil, 0, fmt.Errorf("config drive: %w", err)
	}
	fail := func(err error) (*os.File, int64, error) {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, 0, fmt.Errorf("config drive: %w", err)
	}
	if err := w.WriteTo(f, ConfigDriveLabel); err != nil {
		return fail(err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, size, nil
}
