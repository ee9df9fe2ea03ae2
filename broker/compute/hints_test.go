package compute_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestLabelHints: "require:K" and "prefer:K" scheduler hints are peer
// labels the placement policy must honour, as
// `openstack server create --hint require:tier=public` sends them.
func TestLabelHints(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t,
		brokertest.Peer{Name: "private", Labels: map[string]string{"tier": "private"}},
		brokertest.Peer{Name: "public", Labels: map[string]string{"tier": "public"}})
	c := se.compute(t, "hana", se.Member(t, "hana", "team-h", identity.RoleMember), "team-h")
	tests := []struct {
		name     string
		hints    map[string]any
		wantZone string // "" = refused
		wantCode int
	}{
		{"required public", map[string]any{"require:tier": "public"}, "public", 0},
		{"required private", map[string]any{"require:tier": "private"}, "private", 0},
		{"preferred public", map[string]any{"prefer:tier": "public"}, "public", 0},
		{"required label no peer has", map[string]any{"require:tier": "gold"}, "", http.StatusBadRequest},
		{"a hint naming no label", map[string]any{"require:": "x"}, "", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Boot the image the expected peer holds, so no copy is needed.
			image := se.Seeded["private"].ImageID
			if tc.wantZone == "public" {
				image = se.Seeded["public"].ImageID
			}
			opts := servers.CreateOpts{Name: tc.name, FlavorRef: "1", ImageRef: image, Networks: "none"}
			s, err := servers.Create(ctx, c, opts, servers.SchedulerHintOpts{AdditionalProperties: tc.hints}).Extract()
			if tc.wantZone == "" {
				if !gophercloud.ResponseCodeIs(err, tc.wantCode) {
					t.Fatalf("create = %v, want %d", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := servers.Get(ctx, c, s.ID).Extract()
			if err != nil || got.AvailabilityZone != tc.wantZone {
				t.Fatalf("server in zone %q (%v), want %q", got.AvailabilityZone, err, tc.wantZone)
			}
		})
	}
}
