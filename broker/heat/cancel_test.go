package heat

import (
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stackevents"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stackresources"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stacks"
)

func statuses(t *testing.T, c *gophercloud.ServiceClient, name, id string) string {
	t.Helper()
	pages, err := stackevents.List(c, name, id, nil).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := stackevents.ExtractEvents(pages)
	var out []string
	for _, e := range evs {
		if e.ResourceName == name {
			out = append(out, e.ResourceStatus)
		}
	}
	return strings.Join(out, " ")
}

// TestCancelUpdate cancels an update while its server is being made: the
// update fails and rolls back to the server it had.
func TestCancelUpdate(t *testing.T) {
	he := newHeatEnv(t)
	c := he.client(t, "ann", "team-a", "member")
	ctx := t.Context()
	created, err := stacks.Create(ctx, c, stacks.CreateOpts{Name: "web1", TemplateOpts: &stacks.Template{TE: stacks.TE{Bin: []byte(webHOT)}}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	settle(t, c, "web1", created.ID)
	before, _ := stackresources.Get(ctx, c, "web1", created.ID, "web").Extract()
	he.gate.hold()
	if err := stacks.UpdatePatch(ctx, c, "web1", created.ID, stacks.UpdateOpts{Parameters: map[string]any{"flavor": "m1.small"}}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if s, _ := stacks.Get(ctx, c, "web1", created.ID).Extract(); s.Status != "UPDATE_IN_PROGRESS" {
		t.Fatalf("updating: %s", s.Status)
	}
	var f heatFault
	if code, _ := do(t, c, "POST", "/stacks/web1/actions", `{"cancel_update": null}`, nil); code != 302 {
		t.Fatalf("actions by name: %d, want the lookup's 302", code)
	}
	if code, _ := do(t, c, "POST", "/stacks/web1/"+created.ID+"/actions", `{"cancel_update": null}`, &f); code != 200 {
		t.Fatalf("cancel: %d %+v", code, f)
	}
	he.gate.open()
	s := settle(t, c, "web1", created.ID)
	if s.Status != "ROLLBACK_COMPLETE" || !strings.Contains(s.StatusReason, "update cancelled") {
		t.Fatalf("after cancel: %s (%s)", s.Status, s.StatusReason)
	}
	if got := statuses(t, c, "web1", created.ID); !strings.HasSuffix(got, "UPDATE_FAILED ROLLBACK_IN_PROGRESS ROLLBACK_COMPLETE") {
		t.Errorf("stack events: %s", got)
	}
	after, _ := stackresources.Get(ctx, c, "web1", created.ID, "web").Extract()
	if after.PhysicalID != before.PhysicalID {
		t.Errorf("the server was not restored: %s, had %s", after.PhysicalID, before.PhysicalID)
	}
}

// TestRollbackOnFailure: with rollback enabled (disable_rollback false) a
// failed create rolls back (ROLLBACK_COMPLETE); by default (Heat's) it is
// kept, CREATE_FAILED.
func TestRollbackOnFailure(t *testing.T) {
	he := newHeatEnv(t)
	c := he.client(t, "ann", "team-a", "member")
	he.gate.fail(true)
	for _, tc := range []struct {
		name     string
		rollback bool
		want     string
		events   string
		left     bool
	}{
		{"rollback enabled", true, "ROLLBACK_COMPLETE", "CREATE_IN_PROGRESS ROLLBACK_IN_PROGRESS ROLLBACK_COMPLETE", false},
		{"rollback disabled", false, "CREATE_FAILED", "CREATE_IN_PROGRESS CREATE_FAILED", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disable := !tc.rollback
			name := strings.ReplaceAll(tc.name, " ", "-")
			created, err := stacks.Create(t.Context(), c, stacks.CreateOpts{Name: name, TemplateOpts: &stacks.Template{TE: stacks.TE{Bin: []byte(webHOT)}},
				DisableRollback: &disable}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			s := settle(t, c, name, created.ID)
			if s.Status != tc.want || !strings.Contains(s.StatusReason, "the peer refused the server") && !strings.Contains(s.StatusReason, "server") {
				t.Errorf("%s (%s), want %s", s.Status, s.StatusReason, tc.want)
			}
			if got := statuses(t, c, name, created.ID); got != tc.events {
				t.Errorf("stack events %q, want %q", got, tc.events)
			}
			net, _ := stackresources.Get(t.Context(), c, name, created.ID, "net").Extract()
			if (net.PhysicalID != "") != tc.left {
				t.Errorf("the network is left: %q, want left %v", net.PhysicalID, tc.left)
			}
		})
	}
}
