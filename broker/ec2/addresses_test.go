package ec2_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// TestElasticIPsCLI drives the aws CLI through Elastic IPs: an address
// allocated on the peer's external network, associated with an instance
// on a subnet a router joins to it, shown with the instance by a filter,
// refused to another project and while associated, disassociated and
// released; a chosen address refused to a member, given to an admin
// (once). They are the network service's floating IPs.
func TestElasticIPsCLI(t *testing.T) {
	if _, err := os.Stat(awsCLI); err != nil {
		t.Skipf("%s is not installed (scripts/install-awscli.sh installs it)", awsCLI)
	}
	te := newTestEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	te.Member(t, "bob", "team-b", identity.RoleMember)
	cli := &awsRunner{t: t, endpoint: te.Server.URL + "/ec2/", keys: te.keysFor(t, "admin", "admin"), home: t.TempDir()}
	bob := &awsRunner{t: t, endpoint: cli.endpoint, keys: te.keysFor(t, "bob", "team-b"), home: t.TempDir()}
	img := te.uploadImage(t, "admin", "eip.raw")
	project := te.Boot.Project.ID

	// The peer's external network, as its admin makes it; a project
	// network on the same peer joined to it by a router.
	for _, m := range te.Pool.Members() {
		if m.Peer.Name != img.PeerName {
			continue
		}
		c := m.Cloud.(*localcloud.Cloud)
		n, err := c.CreateNetwork(ctx, peers.NetworkSpec{Name: "public", Project: "cloud-admin", External: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateSubnet(ctx, peers.SubnetSpec{NetworkID: n.ID, Project: "cloud-admin", CIDR: "198.51.100.0/24", IPVersion: 4}); err != nil {
			t.Fatal(err)
		}
		if _, err := te.networks.List(ctx, project, false); err != nil { // learns the new external network
			t.Fatal(err)
		}
		ext := network.NativeID(m.Peer.ID, network.KindNetwork, n.ID)
		net, err := te.networks.CreateNetwork(ctx, project, network.NetworkCreate{Name: "eip-net", ZoneHints: []string{img.PeerName}})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := te.networks.CreateSubnet(ctx, project, network.SubnetCreate{NetworkID: net.Ref.ID, CIDR: "10.50.0.0/24", IPVersion: 4})
		if err != nil {
			t.Fatal(err)
		}
		r, err := te.networks.CreateRouter(ctx, project, network.RouterCreate{Name: "eip-router", Gateway: &network.GatewayRequest{NetworkID: ext}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := te.networks.AddRouterInterface(ctx, project, r.Ref.ID, sub.Ref.ID, ""); err != nil {
			t.Fatal(err)
		}
	}

	var alloc struct{ AllocationID, PublicIP, Domain string }
	cli.ok(&alloc, "allocate-address", "--domain", "vpc")
	if alloc.Domain != "vpc" || alloc.PublicIP == "" || alloc.AllocationID == "" {
		t.Fatalf("allocate-address = %+v", alloc)
	}
	var subnets struct{ Subnets []struct{ SubnetID string } }
	cli.ok(&subnets, "describe-subnets", "--filters", "Name=cidr-block,Values=10.50.0.0/24")
	if len(subnets.Subnets) != 1 {
		t.Fatalf("describe-subnets 10.50.0.0/24 = %+v", subnets)
	}
	var run struct{ Instances []struct{ InstanceID string } }
	cli.ok(&run, "run-instances", "--image-id", img.ID, "--instance-type", "t2.micro", "--subnet-id", subnets.Subnets[0].SubnetID)
	if len(run.Instances) != 1 {
		t.Fatalf("run-instances = %+v", run)
	}
	inst := run.Instances[0].InstanceID
	cli.waitCLI(ctx, "running", inst)

	var assoc struct{ AssociationID string }
	cli.ok(&assoc, "associate-address", "--instance-id", inst, "--allocation-id", alloc.AllocationID)
	var desc struct {
		Addresses []struct{ AllocationID, AssociationID, InstanceID, PublicIP, PrivateIPAddress string }
	}
	cli.ok(&desc, "describe-addresses", "--filters", "Name=instance-id,Values="+inst)
	if len(desc.Addresses) != 1 || desc.Addresses[0].AllocationID != alloc.AllocationID || desc.Addresses[0].AssociationID != assoc.AssociationID ||
		desc.Addresses[0].InstanceID != inst || desc.Addresses[0].PrivateIPAddress == "" {
		t.Fatalf("describe-addresses of %s = %+v, want %s associated as %s", inst, desc, alloc.AllocationID, assoc.AssociationID)
	}
	bob.ok(&desc, "describe-addresses")
	if len(desc.Addresses) != 0 {
		t.Fatalf("bob's describe-addresses = %+v, want none", desc)
	}
	bob.fails("InvalidAllocationID.NotFound", "release-address", "--allocation-id", alloc.AllocationID)
	cli.fails("InvalidIPAddress.InUse", "release-address", "--allocation-id", alloc.AllocationID)
	cli.ok(nil, "disassociate-address", "--association-id", assoc.AssociationID)
	cli.ok(nil, "release-address", "--allocation-id", alloc.AllocationID)
	cli.ok(&desc, "describe-addresses")
	if len(desc.Addresses) != 0 {
		t.Fatalf("describe-addresses after the release = %+v, want none", desc)
	}

	// A chosen address (AWS's recovery, or a BYOIP pool's) is a cloud
	// admin's alone: the network service refuses a member, as Neutron's
	// policy does, and AWS's answer says so.
	if _, stderr, exit := bob.run("allocate-address", "--domain", "vpc", "--address", "198.51.100.90"); exit == 0 ||
		!strings.Contains(stderr, "(InvalidAddress.NotFound)") || !strings.Contains(stderr, "only a cloud administrator may choose the address") {
		t.Fatalf("bob's allocate-address --address: exit %d, stderr %q; want InvalidAddress.NotFound saying why", exit, stderr)
	}
	bob.ok(&desc, "describe-addresses")
	if len(desc.Addresses) != 0 {
		t.Fatalf("bob's describe-addresses after the refusal = %+v, want none", desc)
	}
	cli.ok(&alloc, "allocate-address", "--domain", "vpc", "--address", "198.51.100.90")
	if alloc.PublicIP != "198.51.100.90" {
		t.Fatalf("admin's allocate-address --address 198.51.100.90 = %+v", alloc)
	}
	cli.fails("InvalidAddress.NotFound", "allocate-address", "--domain", "vpc", "--address", "198.51.100.90")
	cli.ok(nil, "release-address", "--allocation-id", alloc.AllocationID)
}
