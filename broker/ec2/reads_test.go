package ec2_test

import (
	"context"
	"net/url"
	"testing"
	"time"
)

// TestStoreReadsPerRequest counts the Store reads (Get, List) of signed
// requests once the caches are warm: verifying the signature and resolving
// the caller (credential, user, project, domain, roles) and the EC2 IDs of
// what a Describe shows read memory only.
func TestStoreReadsPerRequest(t *testing.T) {
	te := newCountedEnv(t)
	ctx, cancel := context.WithTimeout(te.Ctx, time.Minute)
	defer cancel()
	admin := te.client(t, te.keysFor(t, "admin", "admin"))
	_, ids := te.launch(ctx, t, admin, "reads", 1)
	cases := []struct {
		name, action string
		params       url.Values
		want         int64
	}{
		{"signature and caller only", "DescribeAvailabilityZones", nil, 0},
		{"regions", "DescribeRegions", nil, 0},
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
			if got := te.counted.Reads(); got != tc.want*n {
				t.Fatalf("%s: %d Store reads in %d requests; want %d each", tc.action, got, n, tc.want)
			}
		})
	}
	_ = ids
}
