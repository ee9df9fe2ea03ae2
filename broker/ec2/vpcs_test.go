package ec2_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
)

// TestVPCsAreNeutronNetworks: a project's networks, subnets and security
// groups show as VPCs, subnets and groups, to it alone, and RunInstances
// puts an instance on a subnet with a fixed address.
func TestVPCsAreNeutronNetworks(t *testing.T) {
	te := newTestEnv(t)
	ctx, cancel := context.WithTimeout(te.Ctx, time.Minute)
	defer cancel()
	te.Member(t, "bob", "team-b", identity.RoleMember)
	bob := te.client(t, te.keysFor(t, "bob", "team-b"))
	admin := te.client(t, te.keysFor(t, "admin", "admin"))
	proj, _ := te.Dir.FindProject(ctx, identity.DefaultDomainID, "team-b")
	img := te.uploadImage(t, "team-b", "vpc-image.raw")

	net, err := te.networks.CreateNetwork(ctx, proj.ID, network.NetworkCreate{Name: "net-b", ZoneHints: []string{img.PeerName}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := te.networks.CreateSubnet(ctx, proj.ID, network.SubnetCreate{Name: "sub-b", NetworkID: net.Ref.ID, CIDR: "10.1.0.0/24", IPVersion: 4, EnableDHCP: true})
	if err != nil {
		t.Fatal(err)
	}

	var vpcs struct {
		Items []struct {
			ID   string `xml:"vpcId"`
			CIDR string `xml:"cidrBlock"`
			Name string `xml:"tagSet>item>value"`
		} `xml:"vpcSet>item"`
	}
	bob.must("DescribeVpcs", nil, &vpcs)
	if len(vpcs.Items) != 1 || vpcs.Items[0].CIDR != "10.1.0.0/24" || vpcs.Items[0].Name != "net-b" {
		t.Fatalf("vpcs = %+v", vpcs)
	}
	var subnets struct {
		Items []struct {
			ID        string `xml:"subnetId"`
			VPC       string `xml:"vpcId"`
			Zone      string `xml:"availabilityZone"`
			Available int    `xml:"availableIpAddressCount"`
		} `xml:"subnetSet>item"`
	}
	bob.must("DescribeSubnets", url.Values{"Filter.1.Name": {"vpc-id"}, "Filter.1.Value.1": {vpcs.Items[0].ID}}, &subnets)
	if len(subnets.Items) != 1 || subnets.Items[0].VPC != vpcs.Items[0].ID || subnets.Items[0].Zone != img.PeerName || subnets.Items[0].Available != 253 {
		t.Fatalf("subnets = %+v (subnet %s)", subnets, sub.Ref.ID)
	}
	subnetID := subnets.Items[0].ID
	var groups struct {
		Items []struct {
			ID      string   `xml:"groupId"`
			Name    string   `xml:"groupName"`
			Egress  []string `xml:"ipPermissionsEgress>item>ipRanges>item>cidrIp"`
			Ingress []string `xml:"ipPermissions>item>groups>item>groupId"`
		} `xml:"securityGroupInfo>item"`
	}
	bob.must("DescribeSecurityGroups", nil, &groups)
	if len(groups.Items) != 1 || groups.Items[0].Name != "default" || len(groups.Items[0].Egress) != 1 || groups.Items[0].Egress[0] != "0.0.0.0/0" ||
		len(groups.Items[0].Ingress) != 2 || groups.Items[0].Ingress[0] != groups.Items[0].ID {
		t.Fatalf("security groups = %+v", groups)
	}

	// The admin project sees none of team-b's.
	vpcs.Items = nil
	admin.must("DescribeVpcs", nil, &vpcs)
	if len(vpcs.Items) != 0 {
		t.Fatalf("admin sees %+v", vpcs)
	}
	wantCode(t, admin.do("DescribeSubnets", url.Values{"SubnetId.1": {subnetID}}, nil), "InvalidSubnetID.NotFound")
	var imgs struct {
		IDs []string `xml:"imagesSet>item>imageId"`
	}
	bob.must("DescribeImages", url.Values{"Owner.1": {"self"}}, &imgs)
	// (A cloud admin may use any project's image, but not its subnet.)
	wantCode(t, admin.do("RunInstances", url.Values{"ImageId": {imgs.IDs[0]}, "SubnetId": {subnetID}}, nil), "InvalidSubnetID.NotFound")
	wantCode(t, bob.do("RunInstances", url.Values{"ImageId": {imgs.IDs[0]}, "SubnetId": {subnetID}, "SecurityGroupId.1": {"sg-0123456789abcdef0"}}, nil), "InvalidGroup.NotFound")
	wantCode(t, bob.do("RunInstances", url.Values{"ImageId": {imgs.IDs[0]}, "PrivateIpAddress": {"10.1.0.50"}}, nil), "InvalidParameterValue")
	// An instance launches in the groups it names (IDs or names), its
	// ports in them on its peer.
	var web struct {
		ID string `xml:"groupId"`
	}
	bob.must("CreateSecurityGroup", url.Values{"GroupName": {"web"}, "GroupDescription": {"web servers"}}, &web)
	var run struct {
		Instances []instance `xml:"instancesSet>item"`
	}
	bob.must("RunInstances", url.Values{"ImageId": {imgs.IDs[0]}, "InstanceType": {"m1.nano"}, "SubnetId": {subnetID},
		"PrivateIpAddress": {"10.1.0.50"}, "SecurityGroupId.1": {groups.Items[0].ID}, "SecurityGroup.1": {"web"}}, &run)
	id := run.Instances[0].ID
	bob.waitState(ctx, "running", id)
	var desc struct {
		IPs    []string `xml:"reservationSet>item>instancesSet>item>privateIpAddress"`
		Groups []string `xml:"reservationSet>item>instancesSet>item>groupSet>item>groupId"`
		Names  []string `xml:"reservationSet>item>instancesSet>item>groupSet>item>groupName"`
	}
	bob.must("DescribeInstances", url.Values{"InstanceId.1": {id}}, &desc)
	if len(desc.IPs) != 1 || desc.IPs[0] != "10.1.0.50" {
		t.Fatalf("instance addresses = %+v", desc)
	}
	if !slices.Equal(desc.Groups, []string{groups.Items[0].ID, web.ID}) || !slices.Equal(desc.Names, []string{"default", "web"}) {
		t.Fatalf("instance groups = %v %v, want the default group and web", desc.Groups, desc.Names)
	}
	wantCode(t, bob.do("DeleteSecurityGroup", url.Values{"GroupId": {web.ID}}, nil), "DependencyViolation")
}

// TestSecurityGroupWrites: groups and permissions made through EC2 are
// Neutron's groups and rules.
func TestSecurityGroupWrites(t *testing.T) {
	te := newTestEnv(t)
	te.Member(t, "bob", "team-b", identity.RoleMember)
	bob := te.client(t, te.keysFor(t, "bob", "team-b"))
	proj, _ := te.Dir.FindProject(te.Ctx, identity.DefaultDomainID, "team-b")

	var made struct {
		ID string `xml:"groupId"`
	}
	bob.must("CreateSecurityGroup", url.Values{"GroupName": {"web"}, "GroupDescription": {"web servers"}}, &made)
	wantCode(t, bob.do("CreateSecurityGroup", url.Values{"GroupName": {"web"}, "GroupDescription": {"again"}}, nil), "InvalidGroup.Duplicate")
	wantCode(t, bob.do("CreateSecurityGroup", url.Values{"GroupName": {"x"}}, nil), "MissingParameter")
	ssh := url.Values{"GroupId": {made.ID}, "IpPermissions.1.IpProtocol": {"tcp"}, "IpPermissions.1.FromPort": {"22"}, "IpPermissions.1.ToPort": {"22"},
		"IpPermissions.1.IpRanges.1.CidrIp": {"0.0.0.0/0"}, "IpPermissions.1.IpRanges.2.CidrIp": {"10.0.0.0/8"},
		"IpPermissions.2.IpProtocol": {"icmp"}, "IpPermissions.2.FromPort": {"-1"}, "IpPermissions.2.ToPort": {"-1"},
		"IpPermissions.2.Groups.1.GroupName": {"default"}}
	bob.must("AuthorizeSecurityGroupIngress", ssh, nil)
	wantCode(t, bob.do("AuthorizeSecurityGroupIngress", ssh, nil), "InvalidPermission.Duplicate")
	wantCode(t, bob.do("AuthorizeSecurityGroupIngress", url.Values{"GroupId": {made.ID}, "IpPermissions.1.IpProtocol": {"tcp"},
		"IpPermissions.1.FromPort": {"80"}, "IpPermissions.1.ToPort": {"70"}, "IpPermissions.1.IpRanges.1.CidrIp": {"0.0.0.0/0"}}, nil), "InvalidParameterValue")
	wantCode(t, bob.do("AuthorizeSecurityGroupIngress", url.Values{"GroupId": {"sg-0123456789abcdef0"}, "IpProtocol": {"tcp"}, "CidrIp": {"0.0.0.0/0"}}, nil), "InvalidGroup.NotFound")

	// Neutron's view: the group with two egress defaults and three new rules.
	groups, err := te.networks.SecurityGroups(te.Ctx, proj.ID)
	if err != nil {
		t.Fatal(err)
	}
	var web *network.SecurityGroup
	for i := range groups {
		if groups[i].Name == "web" {
			web = &groups[i]
		}
	}
	if web == nil || len(web.Rules) != 5 {
		t.Fatalf("neutron's groups = %+v", groups)
	}
	bob.must("RevokeSecurityGroupIngress", url.Values{"GroupName": {"web"}, "IpPermissions.1.IpProtocol": {"tcp"}, "IpPermissions.1.FromPort": {"22"},
		"IpPermissions.1.ToPort": {"22"}, "IpPermissions.1.IpRanges.1.CidrIp": {"0.0.0.0/0"}}, nil)
	wantCode(t, bob.do("RevokeSecurityGroupIngress", url.Values{"GroupName": {"web"}, "IpPermissions.1.IpProtocol": {"tcp"}, "IpPermissions.1.FromPort": {"22"},
		"IpPermissions.1.ToPort": {"22"}, "IpPermissions.1.IpRanges.1.CidrIp": {"0.0.0.0/0"}}, nil), "InvalidPermission.NotFound")
	var desc struct {
		Perms []struct {
			Proto string   `xml:"ipProtocol"`
			From  string   `xml:"fromPort"`
			CIDRs []string `xml:"ipRanges>item>cidrIp"`
			Group []string `xml:"groups>item>groupId"`
		} `xml:"securityGroupInfo>item>ipPermissions>item"`
	}
	bob.must("DescribeSecurityGroups", url.Values{"GroupId.1": {made.ID}}, &desc)
	if len(desc.Perms) != 2 || desc.Perms[0].Proto != "tcp" || desc.Perms[0].CIDRs[0] != "10.0.0.0/8" || desc.Perms[1].Proto != "icmp" || len(desc.Perms[1].Group) != 1 {
		t.Fatalf("described permissions = %+v", desc)
	}
	wantCode(t, bob.do("DeleteSecurityGroup", url.Values{"GroupName": {"default"}}, nil), "CannotDelete")
	bob.must("DeleteSecurityGroup", url.Values{"GroupName": {"web"}}, nil)
	wantCode(t, bob.do("DescribeSecurityGroups", url.Values{"GroupId.1": {made.ID}}, nil), "InvalidGroup.NotFound")
}

// TestVpcWrites: CreateVpc and CreateSubnet make Neutron's network and
// subnet; EC2's rules on blocks and dependencies hold.
func TestVpcWrites(t *testing.T) {
	te := newTestEnv(t)
	te.Member(t, "bob", "team-b", identity.RoleMember)
	bob := te.client(t, te.keysFor(t, "bob", "team-b"))
	proj, _ := te.Dir.FindProject(te.Ctx, identity.DefaultDomainID, "team-b")

	var vpc struct {
		ID   string `xml:"vpc>vpcId"`
		CIDR string `xml:"vpc>cidrBlock"`
	}
	bob.must("CreateVpc", url.Values{"CidrBlock": {"10.20.0.0/16"}, "TagSpecification.1.ResourceType": {"vpc"},
		"TagSpecification.1.Tag.1.Key": {"Name"}, "TagSpecification.1.Tag.1.Value": {"my-vpc"}}, &vpc)
	if vpc.CIDR != "10.20.0.0/16" {
		t.Fatalf("created %+v", vpc)
	}
	v, err := te.networks.List(te.Ctx, proj.ID, false)
	if err != nil || len(v.Networks) != 1 || v.Networks[0].Peer.Name != "my-vpc" {
		t.Fatalf("neutron's networks = %+v, %v", v.Networks, err)
	}
	zone := v.Networks[0].Ref.Member.Peer.Name
	other := map[string]string{"alpha": "beta", "beta": "alpha"}[zone]
	refusals := []struct {
		name, action string
		params       url.Values
		code         string
	}{
		{"a block too large", "CreateVpc", url.Values{"CidrBlock": {"10.0.0.0/8"}}, "InvalidParameterValue"},
		{"host bits", "CreateVpc", url.Values{"CidrBlock": {"10.0.0.1/16"}}, "InvalidParameterValue"},
		{"outside the vpc", "CreateSubnet", url.Values{"VpcId": {vpc.ID}, "CidrBlock": {"10.30.1.0/24"}}, "InvalidSubnet.Range"},
		{"another zone", "CreateSubnet", url.Values{"VpcId": {vpc.ID}, "CidrBlock": {"10.20.1.0/24"}, "AvailabilityZone": {other}}, "InvalidParameterValue"},
		{"unknown vpc", "CreateSubnet", url.Values{"VpcId": {"vpc-0123456789abcdef0"}, "CidrBlock": {"10.20.1.0/24"}}, "InvalidVpcID.NotFound"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			bob.t = t
			wantCode(t, bob.do(tc.action, tc.params, nil), tc.code)
		})
	}
	bob.t = t
	var sub struct {
		ID   string `xml:"subnet>subnetId"`
		Zone string `xml:"subnet>availabilityZone"`
	}
	bob.must("CreateSubnet", url.Values{"VpcId": {vpc.ID}, "CidrBlock": {"10.20.1.0/24"}, "AvailabilityZone": {zone}}, &sub)
	if sub.Zone != zone {
		t.Fatalf("subnet = %+v", sub)
	}
	wantCode(t, bob.do("CreateSubnet", url.Values{"VpcId": {vpc.ID}, "CidrBlock": {"10.20.1.0/25"}}, nil), "InvalidSubnet.Conflict")
	wantCode(t, bob.do("DeleteVpc", url.Values{"VpcId": {vpc.ID}}, nil), "DependencyViolation")
	var vpcs struct {
		CIDRs []string `xml:"vpcSet>item>cidrBlock"`
	}
	bob.must("DescribeVpcs", url.Values{"VpcId.1": {vpc.ID}}, &vpcs)
	if len(vpcs.CIDRs) != 1 || vpcs.CIDRs[0] != "10.20.0.0/16" {
		t.Fatalf("described = %+v", vpcs)
	}
	bob.must("DeleteSubnet", url.Values{"SubnetId": {sub.ID}}, nil)
	bob.must("DeleteVpc", url.Values{"VpcId": {vpc.ID}}, nil)
	wantCode(t, bob.do("DescribeVpcs", url.Values{"VpcId.1": {vpc.ID}}, nil), "InvalidVpcID.NotFound")
}

// TestVpcWritesOfAnotherProject: another project's VPC and subnet get the
// very answer an ID naming nothing gets, so a write by ID cannot tell
// which IDs exist.
func TestVpcWritesOfAnotherProject(t *testing.T) {
	te := newTestEnv(t)
	te.Member(t, "bob", "team-b", identity.RoleMember)
	te.Member(t, "carol", "team-c", identity.RoleMember)
	bob := te.client(t, te.keysFor(t, "bob", "team-b"))
	carol := te.client(t, te.keysFor(t, "carol", "team-c"))
	var vpc struct {
		ID string `xml:"vpc>vpcId"`
	}
	bob.must("CreateVpc", url.Values{"CidrBlock": {"10.20.0.0/16"}}, &vpc)
	var sub struct {
		ID string `xml:"subnet>subnetId"`
	}
	bob.must("CreateSubnet", url.Values{"VpcId": {vpc.ID}, "CidrBlock": {"10.20.1.0/24"}}, &sub)
	for _, tc := range []struct {
		name, action, param, bobs, none string
	}{
		{"delete vpc", "DeleteVpc", "VpcId", vpc.ID, "vpc-0123456789abcdef0"},
		{"subnet in vpc", "CreateSubnet", "VpcId", vpc.ID, "vpc-0123456789abcdef0"},
		{"delete subnet", "DeleteSubnet", "SubnetId", sub.ID, "subnet-0123456789abcdef0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			carol.t = t
			params := func(id string) url.Values {
				return url.Values{tc.param: {id}, "CidrBlock": {"10.20.2.0/24"}}
			}
			got, none := carol.do(tc.action, params(tc.bobs), nil), carol.do(tc.action, params(tc.none), nil)
			if got == nil || none == nil || got.Code != none.Code ||
				strings.ReplaceAll(got.Message, tc.bobs, "X") != strings.ReplaceAll(none.Message, tc.none, "X") {
				t.Fatalf("bob's %s answers %+v; an unknown ID %+v", tc.param, got, none)
			}
		})
	}
}
