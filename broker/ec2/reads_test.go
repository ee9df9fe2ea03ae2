package ec2_test

import (
	"context"
	"net/url"
	"testing"
	"time"
)

// TestStoreReadsPerRequest counts the Store reads (Get, List) of signed
// requests once the caches are warm, with the services' records held in
// memory as the broker runs them (the index, key pairs, server, volume and
// network attrs, image deactivations). Verifying the signature, resolving
// the caller (credential, user, project, domain, roles: 6 reads before the
// identity cache), the EC2 IDs, tags, terminated instances and VPC blocks
// a Describe shows read memory only. What is left is at most max per
// request: the network service's security groups (one list of the
// project's groups).
func TestStoreReadsPerRequest(t *testing.T) {
	te := newCountedEnv(t)
	ctx, cancel := context.WithTimeout(te.Ctx, time.Minute)
	defer cancel()
	admin := te.client(t, te.keysFor(t, "admin", "admin"))
	_, ids := te.launch(ctx, t, admin, "reads", 1)
	admin.must("CreateTags", url.Values{"ResourceId.1": {ids[0]}, "Tag.1.Key": {"env"}, "Tag.1.Value": {"test"}}, nil)
	admin.must("CreateVolume", url.Values{"Size": {"1"}}, nil)
	var vpc struct {
		ID string `xml:"vpc>vpcId"`
	}
	admin.must("CreateVpc", url.Values{"CidrBlock": {"10.30.0.0/16"}}, &vpc)
	admin.must("CreateSubnet", url.Values{"VpcId": {vpc.ID}, "CidrBlock": {"10.30.1.0/24"}}, nil)
	cases := []struct {
		name, action string
		params       url.Values
		max          int64
	}{
		{"signature and caller only", "DescribeAvailabilityZones", nil, 0},
		{"regions", "DescribeRegions", nil, 0},
		{"instances", "DescribeInstances", nil, 0},
		{"instance by ID", "DescribeInstances", url.Values{"InstanceId.1": {ids[0]}}, 0},
		{"tags", "DescribeTags", nil, 0},
		{"volumes", "DescribeVolumes", nil, 0},
		{"images", "DescribeImages", nil, 0},
		{"key pairs", "DescribeKeyPairs", nil, 0},
		{"vpcs", "DescribeVpcs", nil, 0},
		{"subnets", "DescribeSubnets", nil, 0},
		{"security groups", "DescribeSecurityGroups", nil, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			admin.t = t
			admin.must(tc.action, tc.params, nil) // warm
			te.counted.Reset()
			const n = 10
			for range n {
				admin.must(tc.action, tc.params, nil)
			}
			got := te.counted.Reads()
			t.Logf("%s: %.1f Store reads per request", tc.action, float64(got)/n)
			if got > tc.max*n {
				t.Fatalf("%s: %d Store reads in %d requests; want at most %d each", tc.action, got, n, tc.max)
			}
		})
	}
}
