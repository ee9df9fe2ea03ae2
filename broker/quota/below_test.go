package quota_test

import (
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/broker/quota"
)

// TestBelow: only the limits asked for that are under what the project
// uses and has reserved, by resource; unlimited ones never are.
func TestBelow(t *testing.T) {
	used := quota.Amounts{quota.Volumes: 3, quota.Gigabytes: 30, quota.Snapshots: 1}
	reserved := quota.Amounts{quota.Volumes: 1, quota.Gigabytes: 5}
	tests := []struct {
		name   string
		limits quota.Amounts
		want   []quota.Over
	}{
		{name: "none asked", limits: quota.Amounts{}},
		{name: "at usage and reservations", limits: quota.Amounts{quota.Volumes: 4, quota.Gigabytes: 35}},
		{name: "unlimited", limits: quota.Amounts{quota.Volumes: quota.Unlimited}},
		{name: "under by reservations", limits: quota.Amounts{quota.Volumes: 3, quota.Snapshots: 5},
			want: []quota.Over{{Resource: quota.Volumes, Used: 4, Limit: 3}}},
		{name: "several, by resource", limits: quota.Amounts{quota.Volumes: 0, quota.Gigabytes: 10, quota.Snapshots: 0},
			want: []quota.Over{{Resource: quota.Gigabytes, Used: 35, Limit: 10}, {Resource: quota.Snapshots, Used: 1, Limit: 0}, {Resource: quota.Volumes, Used: 4, Limit: 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := quota.Below(tc.limits, used, reserved); !slices.Equal(got, tc.want) {
				t.Fatalf("Below = %+v, want %+v", got, tc.want)
			}
		})
	}
}
