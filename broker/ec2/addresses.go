package ec2

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/network"
)

// Elastic IPs are the network service's floating IPs (Domain vpc only):
// `aws ec2 allocate-address` and `openstack floating ip list` show the
// same addresses. An allocation is taken on an external network the
// project sees (NetworkBorderGroup names its peer, else the first peer
// with one, by name); an association maps it onto an instance's first
// port on that peer, or onto a NetworkInterfaceId (a port's broker ID).
// The association ID is one per floating IP (eipassoc- paired with it),
// not one per association as on AWS.

// AddressService is the part of network.Service Elastic IPs use.
type AddressService interface {
	List(ctx context.Context, project string, withPorts bool) (network.Visible, error)
	CreateFloatingIP(ctx context.Context, project string, req network.FloatingIPCreate) (network.FloatingIP, error)
	GetFloatingIP(ctx context.Context, project, id string) (network.FloatingIP, error)
	ListFloatingIPs(ctx context.Context, project string) ([]network.FloatingIP, []string, error)
	SetFloatingIPPort(ctx context.Context, project, id, portID, fixedIP string) (network.FloatingIP, error)
	DeleteFloatingIP(ctx context.Context, project, id string) error
	ServerPortsOf(ctx context.Context, project, serverID string) ([]network.Port, error)
	PortsOn(ctx context.Context, project string, peerIDs []string) ([]network.Port, []string, error)
}

var _ AddressService = (*network.Service)(nil)

// EC2 ID prefixes of Elastic IPs.
const (
	prefixEIP      = "eipalloc"
	prefixEIPAssoc = "eipassoc"
)

type addressItem struct {
	PublicIP           string     `xml:"publicIp"`
	AllocationID       string     `xml:"allocationId"`
	Domain             string     `xml:"domain"`
	AssociationID      string     `xml:"associationId,omitempty"`
	InstanceID         string     `xml:"instanceId,omitempty"`
	NetworkInterfaceID string     `xml:"networkInterfaceId,omitempty"`
	PrivateIPAddress   string     `xml:"privateIpAddress,omitempty"`
	NetworkBorderGroup string     `xml:"networkBorderGroup"`
	TagSet             items[Tag] `xml:"tagSet"`
}

// eipErr translates the network service's errors for an address.
func eipErr(err error, id string) error {
	var ne *network.Error
	switch {
	case errors.Is(err, network.ErrNotFound):
		return notFound("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", id)
	case errors.As(err, &ne) && ne.Status == http.StatusConflict && ne.Type == "OverQuota":
		return errorf(http.StatusBadRequest, "AddressLimitExceeded", "The maximum number of addresses has been reached.").hiding(err)
	case errors.As(err, &ne) && ne.Status == http.StatusConflict:
		return errorf(http.StatusBadRequest, "Resource.AlreadyAssociated", "%s", ne.Message)
	case errors.As(err, &ne) && ne.Status == http.StatusBadRequest:
		return errorf(http.StatusBadRequest, "InvalidParameterValue", "%s", ne.Message)
	}
	return err
}

// addressErr is eipErr for AllocateAddress. A specific Address is AWS's
// recovery of a released one or a BYOIP pool's; here there is neither,
// and choosing the address is a cloud admin's alone (the network
// service refuses a member, as Neutron's policy does): a refused or
// taken one is AWS's InvalidAddress.NotFound, saying why.
func addressErr(err error, addr string) error {
	var ne *network.Error
	switch {
	case addr == "":
	case errors.Is(err, network.ErrForbidden):
		return errorf(http.StatusBadRequest, "InvalidAddress.NotFound",
			"The Elastic IP address '%s' does not exist or is not available: there are no BYOIP pools or released addresses to recover here, and only a cloud administrator may choose the address.", addr).hiding(err)
	case errors.As(err, &ne) && (ne.Status == http.StatusConflict && ne.Type != "OverQuota" || ne.Status == http.StatusBadRequest):
		return errorf(http.StatusBadRequest, "InvalidAddress.NotFound", "The Elastic IP address '%s' does not exist or is not available: %s", addr, ne.Message).hiding(err)
	}
	return eipErr(err, "")
}

func (a *API) allocateAddress(ctx context.Context, c *call) (any, error) {
	if d := c.params.get("Domain"); d != "" && d != "vpc" {
		return nil, invalidParameter("Domain %q: only vpc addresses exist here", d)
	}
	zone := c.params.get("NetworkBorderGroup")
	vis, err := a.Addresses.List(ctx, c.token.ProjectID, false)
	if err != nil {
		return nil, err
	}
	var ext []network.Network
	for _, n := range vis.Networks {
		if n.Peer.External && (zone == "" || n.Ref.Member.Peer.Name == zone) {
			ext = append(ext, n)
		}
	}
	if len(ext) == 0 {
		return nil, errorf(http.StatusBadRequest, "InvalidParameterValue", "No external network to take an address from%s.", map[bool]string{true: " in " + zone, false: ""}[zone != ""])
	}
	sort.Slice(ext, func(i, j int) bool { return ext[i].Ref.Member.Peer.Name < ext[j].Ref.Member.Peer.Name })
	addr := c.params.get("Address")
	f, err := a.Addresses.CreateFloatingIP(ctx, c.token.ProjectID, network.FloatingIPCreate{NetworkID: ext[0].Ref.ID, Address: addr})
	if err != nil {
		return nil, addressErr(err, addr)
	}
	id, err := a.ids.assign(ctx, prefixEIP, f.Ref.ID)
	if err != nil {
		return nil, err
	}
	return struct {
		PublicIP           string `xml:"publicIp"`
		Domain             string `xml:"domain"`
		AllocationID       string `xml:"allocationId"`
		NetworkBorderGroup string `xml:"networkBorderGroup"`
	}{f.Peer.Address, "vpc", id, f.Ref.Member.Peer.Name}, nil
}

// findAddress resolves AllocationId (or PublicIp) to one of the project's
// floating IPs.
func (a *API) findAddress(ctx context.Context, c *call, idParam string) (network.FloatingIP, string, error) {
	id, ip := c.params.get(idParam), c.params.get("PublicIp")
	if id == "" && ip == "" {
		return network.FloatingIP{}, "", missingParameter(idParam)
	}
	if id != "" {
		prefix := prefixEIP
		if idParam == "AssociationId" {
			prefix = prefixEIPAssoc
		}
		u, err := a.idMaps().resolve(ctx, prefix, id)
		if err != nil {
			return network.FloatingIP{}, "", eipErr(network.ErrNotFound, id)
		}
		f, err := a.Addresses.GetFloatingIP(ctx, c.token.ProjectID, u)
		return f, id, eipErr(err, id)
	}
	fs, _, err := a.Addresses.ListFloatingIPs(ctx, c.token.ProjectID)
	if err != nil {
		return network.FloatingIP{}, "", err
	}
	for _, f := range fs {
		if f.Peer.Address == ip {
			return f, ip, nil
		}
	}
	return network.FloatingIP{}, "", notFound("InvalidAddress.NotFound", "Address '%s' not found.", ip)
}

func (a *API) associateAddress(ctx context.Context, c *call) (any, error) {
	f, _, err := a.findAddress(ctx, c, "AllocationId")
	if err != nil {
		return nil, err
	}
	port := c.params.get("NetworkInterfaceId")
	if inst := c.params.get("InstanceId"); inst != "" {
		if port, err = a.instancePort(ctx, c, inst, f); err != nil {
			return nil, err
		}
	}
	if port == "" {
		return nil, missingParameter("InstanceId")
	}
	if f.PortID != "" && f.PortID != port && c.params.get("AllowReassociation") != "true" {
		return nil, errorf(http.StatusBadRequest, "Resource.AlreadyAssociated", "The address is already associated; set AllowReassociation to move it.")
	}
	if _, err := a.Addresses.SetFloatingIPPort(ctx, c.token.ProjectID, f.Ref.ID, port, c.params.get("PrivateIpAddress")); err != nil {
		return nil, eipErr(err, f.Ref.ID)
	}
	assoc, err := a.ids.assign(ctx, prefixEIPAssoc, f.Ref.ID)
	if err != nil {
		return nil, err
	}
	return struct {
		Return        bool   `xml:"return"`
		AssociationID string `xml:"associationId"`
	}{true, assoc}, nil
}

// instancePort is the broker ID of an instance's first port on the
// floating IP's peer.
func (a *API) instancePort(ctx context.Context, c *call, inst string, f network.FloatingIP) (string, error) {
	u, err := a.resolveID(ctx, c, prefixInstance, inst)
	if errors.Is(err, errUnknownID) {
		return "", notFound("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", inst)
	}
	if err != nil {
		return "", err
	}
	srv, err := a.Servers.Get(ctx, compute.CallerOf(c.token), u)
	if err != nil {
		return "", serverErr(err, inst)
	}
	// The server's own peer alone is read (its ports are there).
	ports, err := a.Addresses.ServerPortsOf(ctx, c.token.ProjectID, srv.ID)
	if errors.Is(err, network.ErrNotFound) {
		return "", notFound("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", inst)
	}
	if err != nil {
		return "", err
	}
	for _, p := range ports {
		if p.Ref.Member.Peer.ID == f.Ref.Member.Peer.ID {
			return p.Ref.ID, nil
		}
	}
	return "", errorf(http.StatusBadRequest, "InvalidInstanceID", "Instance '%s' has no network interface in the address's zone %s.", inst, f.Ref.Member.Peer.Name)
}

func (a *API) disassociateAddress(ctx context.Context, c *call) (any, error) {
	f, _, err := a.findAddress(ctx, c, "AssociationId")
	if err != nil {
		return nil, err
	}
	if f.PortID == "" {
		return nil, notFound("InvalidAssociationID.NotFound", "The association ID does not exist")
	}
	if _, err := a.Addresses.SetFloatingIPPort(ctx, c.token.ProjectID, f.Ref.ID, "", ""); err != nil {
		return nil, eipErr(err, f.Ref.ID)
	}
	return returnTrue{true}, nil
}

func (a *API) releaseAddress(ctx context.Context, c *call) (any, error) {
	f, id, err := a.findAddress(ctx, c, "AllocationId")
	if err != nil {
		return nil, err
	}
	if f.PortID != "" {
		return nil, errorf(http.StatusBadRequest, "InvalidIPAddress.InUse", "Address %s is in use.", cmpOr(id, f.Peer.Address))
	}
	if err := a.Addresses.DeleteFloatingIP(ctx, c.token.ProjectID, f.Ref.ID); err != nil {
		return nil, eipErr(err, id)
	}
	return returnTrue{true}, nil
}

func (a *API) describeAddresses(ctx context.Context, c *call) (any, error) {
	fs, failed, err := a.Addresses.ListFloatingIPs(ctx, c.token.ProjectID)
	if err != nil {
		return nil, err
	}
	c.flagPartial(a.Log, "addresses", failed)
	servers, err := a.portServers(ctx, c, fs)
	if err != nil {
		return nil, err
	}
	out := []addressItem{}
	wantIDs, wantIPs := c.params.list("AllocationId"), c.params.list("PublicIp")
	for _, f := range fs {
		id, err := a.ids.shown(ctx, prefixEIP, f.Ref.ID)
		if err != nil {
			return nil, err
		}
		it := addressItem{PublicIP: f.Peer.Address, AllocationID: id, Domain: "vpc", NetworkBorderGroup: f.Ref.Member.Peer.Name, PrivateIPAddress: f.Peer.FixedIP}
		if f.PortID != "" {
			if it.AssociationID, err = a.ids.shown(ctx, prefixEIPAssoc, f.Ref.ID); err != nil {
				return nil, err
			}
			it.NetworkInterfaceID = f.PortID
			if srv := servers[f.PortID]; srv != "" {
				if it.InstanceID, err = a.ids.shown(ctx, prefixInstance, srv); err != nil {
					return nil, err
				}
			}
		}
		if len(wantIDs) > 0 && !contains(wantIDs, id) || len(wantIPs) > 0 && !contains(wantIPs, it.PublicIP) || !addressMatches(it, c.params.filters()) {
			continue
		}
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PublicIP < out[j].PublicIP })
	return struct {
		AddressesSet items[addressItem] `xml:"addressesSet"`
	}{list(out)}, nil
}

// portServers maps the ports of the associated addresses among fs to the
// servers they are bound to, reading only those addresses' peers (a port
// a floating IP maps onto is on its peer); a peer that does not answer
// leaves its addresses without an instance, flagged as a partial answer.
func (a *API) portServers(ctx context.Context, c *call, fs []network.FloatingIP) (map[string]string, error) {
	var peerIDs []string
	for _, f := range fs {
		if id := f.Ref.Member.Peer.ID; f.PortID != "" && !contains(peerIDs, id) {
			peerIDs = append(peerIDs, id)
		}
	}
	out := map[string]string{}
	if len(peerIDs) == 0 {
		return out, nil
	}
	ports, failed, err := a.Addresses.PortsOn(ctx, c.token.ProjectID, peerIDs)
	if err != nil {
		return nil, err
	}
	c.flagPartial(a.Log, "addresses", failed)
	for _, p := range ports {
		out[p.Ref.ID] = p.DeviceID
	}
	return out, nil
}

func addressMatches(it addressItem, filters []filter) bool {
	for _, f := range filters {
		var val string
		switch f.Name {
		case "allocation-id":
			val = it.AllocationID
		case "association-id":
			val = it.AssociationID
		case "domain":
			val = it.Domain
		case "instance-id":
			val = it.InstanceID
		case "network-interface-id":
			val = it.NetworkInterfaceID
		case "private-ip-address":
			val = it.PrivateIPAddress
		case "public-ip":
			val = it.PublicIP
		case "network-border-group":
			val = it.NetworkBorderGroup
		default:
			continue
		}
		if !matchAny(f.Values, val) {
			return false
		}
	}
	return true
}
