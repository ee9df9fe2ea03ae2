package ec2

import (
	"context"
	"errors"
	"net/http"
	"net/netip"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/registry"
)

// VPC and subnet writes: CreateVpc makes a Neutron network (placed like
// Neutron's; a network lives on one peer, so a VPC is in one zone) and
// records its CIDR block, which Neutron networks do not have, under
// ec2/vpc-cidrs/<network ID>; CreateSubnet makes a subnet of it inside
// that block. Deletes follow EC2: a VPC with subnets is a
// DependencyViolation.

const vpcCIDRRoot = "ec2/vpc-cidrs/"

func vpcCIDRKey(networkID string) string { return vpcCIDRRoot + networkID }

// vpcCIDR is the block recorded for a VPC made through EC2, or "", read
// from memory (a watch of ec2/vpc-cidrs/), so DescribeVpcs reads no Store
// key per VPC. A block is written once, before the VPC's ID is returned,
// and never changes, so memory is never wrong, only late for the watch's
// delay with a VPC just made on another replica. fetch asks the Store
// when memory has none: for CreateSubnet, which checks the subnet against
// the block and must not skip the check for so young a VPC. A Describe
// does not fetch (most networks, made through Neutron, have no block: it
// would read the Store for each of them) and shows the first subnet's
// block meanwhile. A VPC with no block is "", nil; an error is the
// Store's (a fetch it could not answer).
func (a *API) vpcCIDR(ctx context.Context, networkID string, fetch bool) (string, error) {
	a.memory()
	cidr, err := a.cidrs.Get(ctx, vpcCIDRKey(networkID), fetch)
	if errors.Is(err, registry.ErrNotFound) {
		return "", nil
	}
	return cidr, err
}

// notFoundWords are the not-found messages of VPC and subnet IDs: one
// wording whether the ID maps to nothing or to another project's network,
// so an answer never tells the two apart.
var notFoundWords = map[string]string{
	"InvalidVpcID.NotFound":    "The vpc ID '%s' does not exist",
	"InvalidSubnetID.NotFound": "The subnet ID '%s' does not exist",
}

// netErr translates the network service's errors for a VPC or subnet.
func netErr(err error, code, id string) error {
	switch {
	case errors.Is(err, network.ErrNotFound):
		words, ok := notFoundWords[code]
		if !ok {
			words = "The ID '%s' does not exist"
		}
		return notFound(code, words, id)
	case errors.Is(err, network.ErrInUse):
		return errorf(http.StatusBadRequest, "DependencyViolation", "The resource '%s' has dependencies and cannot be deleted", id).hiding(err)
	case errors.Is(err, network.ErrForbidden):
		return unauthorizedOperation("You are not authorized to perform this operation").hiding(err)
	case errors.Is(err, network.ErrInvalid):
		return invalidParameter("A value of the request is not valid").hiding(err)
	case errors.Is(err, network.ErrNoPeer):
		return errorf(http.StatusBadRequest, "InsufficientCapacity", "No availability zone can hold the network").hiding(err)
	}
	return err
}

// ipv4Block parses an IPv4 CIDR block of /16 to /28, as EC2 allows.
func ipv4Block(param, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 28 || p.Masked() != p {
		return netip.Prefix{}, invalidParameter("%s %q: want an IPv4 network block from /16 to /28", param, s)
	}
	return p, nil
}

func (a *API) createVpc(ctx context.Context, c *call) (any, error) {
	cidr, e := c.params.require("CidrBlock")
	if e != nil {
		return nil, e
	}
	block, err := ipv4Block("CidrBlock", cidr)
	if err != nil {
		return nil, err
	}
	specs, e := c.params.tagSpecs()
	if e != nil {
		return nil, e
	}
	name := "vpc"
	for _, t := range specs["vpc"] {
		if t.Key == "Name" {
			name = t.Value
		}
	}
	n, err := a.Networks.CreateNetwork(ctx, c.token.ProjectID, network.NetworkCreate{Name: name})
	if err != nil {
		return nil, netErr(err, "InvalidVpcID.NotFound", "")
	}
	a.memory()
	if idx, err := a.Store.CAS(ctx, vpcCIDRKey(n.Ref.ID), []byte(block.String()), 0); err == nil {
		a.cidrs.Wrote(vpcCIDRKey(n.Ref.ID), block.String(), idx)
	} else if !errors.Is(err, registry.ErrConflict) {
		_ = a.Networks.DeleteNetwork(context.WithoutCancel(ctx), c.token.ProjectID, n.Ref.ID)
		return nil, err
	}
	id, err := a.ids.assign(ctx, prefixVPC, n.Ref.ID)
	if err != nil {
		return nil, err
	}
	a.Log.WithFields(logrus.Fields{"vpc": id, "network": n.Ref.ID, "project": c.token.ProjectID, "cidr": block.String()}).Info("ec2: vpc created")
	return struct {
		Vpc vpcItem `xml:"vpc"`
	}{vpcItem{VpcID: id, State: "available", CidrBlock: block.String(), OwnerID: c.token.ProjectID, InstanceTenancy: "default", TagSet: nameTag(name)}}, nil
}

// vpcNetwork resolves a VpcId to its network.
func (a *API) vpcNetwork(ctx context.Context, c *call) (string, network.Network, error) {
	id, e := c.params.require("VpcId")
	if e != nil {
		return "", network.Network{}, e
	}
	u, err := a.resolveID(ctx, c, prefixVPC, id)
	if errors.Is(err, errUnknownID) {
		return "", network.Network{}, notFound("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", id)
	}
	if err != nil {
		return "", network.Network{}, err
	}
	n, err := a.Networks.GetNetwork(ctx, c.token.ProjectID, u)
	if err != nil {
		return "", network.Network{}, netErr(err, "InvalidVpcID.NotFound", id)
	}
	return id, n, nil
}

func (a *API) deleteVpc(ctx context.Context, c *call) (any, error) {
	id, n, err := a.vpcNetwork(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(n.SubnetIDs) > 0 {
		return nil, errorf(http.StatusBadRequest, "DependencyViolation", "The vpc '%s' has dependencies (subnets) and cannot be deleted.", id)
	}
	if err := a.Networks.DeleteNetwork(ctx, c.token.ProjectID, n.Ref.ID); err != nil {
		return nil, netErr(err, "InvalidVpcID.NotFound", id)
	}
	// The network is gone: its block goes even if the client leaves now
	// (what a failure leaves, the ec2-vpc-cidrs collector removes).
	if a.Store.Delete(context.WithoutCancel(ctx), vpcCIDRKey(n.Ref.ID)) == nil {
		a.memory()
		a.cidrs.Deleted(vpcCIDRKey(n.Ref.ID))
	}
	return returnTrue{true}, nil
}

func (a *API) createSubnet(ctx context.Context, c *call) (any, error) {
	vpcID, n, err := a.vpcNetwork(ctx, c)
	if err != nil {
		return nil, err
	}
	cidr, e := c.params.require("CidrBlock")
	if e != nil {
		return nil, e
	}
	block, err := ipv4Block("CidrBlock", cidr)
	if err != nil {
		return nil, err
	}
	vpcBlock, err := a.vpcCIDR(ctx, n.Ref.ID, true)
	if err != nil {
		// Not knowing the block must not skip the range check.
		return nil, errorf(http.StatusServiceUnavailable, "Unavailable", "the VPC's record could not be read; retry").hiding(err)
	}
	if vpcBlock != "" {
		if vb, err := netip.ParsePrefix(vpcBlock); err == nil && (!vb.Contains(block.Addr()) || block.Bits() < vb.Bits()) {
			return nil, errorf(http.StatusBadRequest, "InvalidSubnet.Range", "The CIDR '%s' is invalid: it is outside the VPC's %s", cidr, vpcBlock)
		}
	}
	zone := n.Ref.Member.Peer.Name
	if az := c.params.get("AvailabilityZone"); az != "" && az != zone {
		return nil, invalidParameter("AvailabilityZone %s: the VPC %s lives in %s (a network lives on one peer)", az, vpcID, zone)
	}
	specs, e := c.params.tagSpecs()
	if e != nil {
		return nil, e
	}
	name := ""
	for _, t := range specs["subnet"] {
		if t.Key == "Name" {
			name = t.Value
		}
	}
	s, err := a.Networks.CreateSubnet(ctx, c.token.ProjectID, network.SubnetCreate{Name: name, NetworkID: n.Ref.ID, CIDR: block.String(), IPVersion: 4, EnableDHCP: true})
	if err != nil {
		if errors.Is(err, network.ErrInvalid) {
			return nil, errorf(http.StatusBadRequest, "InvalidSubnet.Conflict", "The CIDR '%s' conflicts with another subnet or is not valid in the VPC", block).hiding(err)
		}
		return nil, netErr(err, "InvalidVpcID.NotFound", vpcID)
	}
	id, err := a.ids.assign(ctx, prefixSubnet, s.Ref.ID)
	if err != nil {
		return nil, err
	}
	return struct {
		Subnet subnetItem `xml:"subnet"`
	}{subnetItem{SubnetID: id, VpcID: vpcID, State: "available", CidrBlock: block.String(), AvailableAddresses: addresses(block.String()),
		AvailabilityZone: zone, OwnerID: c.token.ProjectID, TagSet: nameTag(name)}}, nil
}

func (a *API) deleteSubnet(ctx context.Context, c *call) (any, error) {
	id, e := c.params.require("SubnetId")
	if e != nil {
		return nil, e
	}
	u, err := a.resolveID(ctx, c, prefixSubnet, id)
	if errors.Is(err, errUnknownID) {
		return nil, notFound("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	if err := a.Networks.DeleteSubnet(ctx, c.token.ProjectID, u); err != nil {
		return nil, netErr(err, "InvalidSubnetID.NotFound", id)
	}
	return returnTrue{true}, nil
}
