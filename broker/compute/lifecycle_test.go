package compute_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// serverDoc reads a server's raw view (the fields gophercloud's struct
// leaves out: locked, locked_reason).
func serverDoc(t *testing.T, c *gophercloud.ServiceClient, id string) map[string]any {
	t.Helper()
	var body struct {
		Server map[string]any `json:"server"`
	}
	if _, err := at(c, "2.73").Get(context.Background(), c.ServiceURL("servers", id), &body, nil); err != nil {
		t.Fatal(err)
	}
	return body.Server
}

// TestServerPauseSuspend walks a server through pause and suspend as
// gophercloud drives them, with the states Nova shows and its conflicts.
func TestServerPauseSuspend(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	s := create(t, c, servers.CreateOpts{Name: "ps", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	waitStatus(t, c, s.ID, "ACTIVE")
	steps := []struct {
		name     string
		run      func() error
		wantCode int    // 0: accepted
		status   string // waited for when accepted
		power    servers.PowerState
		vm       string
	}{
		{"unpause an active server", func() error { return servers.Unpause(ctx, c, s.ID).ExtractErr() }, http.StatusConflict, "", 0, ""},
		{"resume an active server", func() error { return servers.Resume(ctx, c, s.ID).ExtractErr() }, http.StatusConflict, "", 0, ""},
		{"pause", func() error { return servers.Pause(ctx, c, s.ID).ExtractErr() }, 0, "PAUSED", servers.PAUSED, "paused"},
		{"stop a paused server", func() error { return servers.Stop(ctx, c, s.ID).ExtractErr() }, http.StatusConflict, "", 0, ""},
		{"suspend a paused server", func() error { return servers.Suspend(ctx, c, s.ID).ExtractErr() }, http.StatusConflict, "", 0, ""},
		{"unpause", func() error { return servers.Unpause(ctx, c, s.ID).ExtractErr() }, 0, "ACTIVE", servers.RUNNING, "active"},
		{"suspend", func() error { return servers.Suspend(ctx, c, s.ID).ExtractErr() }, 0, "SUSPENDED", servers.SHUTDOWN, "suspended"},
		{"start a suspended server", func() error { return servers.Start(ctx, c, s.ID).ExtractErr() }, http.StatusConflict, "", 0, ""},
		{"resume", func() error { return servers.Resume(ctx, c, s.ID).ExtractErr() }, 0, "ACTIVE", servers.RUNNING, "active"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := st.run()
			if st.wantCode != 0 {
				if !gophercloud.ResponseCodeIs(err, st.wantCode) {
					t.Fatalf("%v; want %d", err, st.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := waitStatus(t, c, s.ID, st.status)
			if got.PowerState != st.power || got.VmState != st.vm || got.TaskState != "" {
				t.Fatalf("%s: power_state %d, vm_state %q, task_state %q; want %d, %q, none", st.status, got.PowerState, got.VmState, got.TaskState, st.power, st.vm)
			}
		})
	}
	if err := servers.Pause(ctx, c, "00000000-0000-4000-8000-000000000000").ExtractErr(); !is404(err) {
		t.Fatalf("pausing an unknown server: %v; want 404", err)
	}
	if code, msg := post(t, c, "servers/"+s.ID+"/action", map[string]any{"hibernate": nil}); code != http.StatusBadRequest || msg == "" {
		t.Fatalf("an unknown action: %d %q; want 400 naming it", code, msg)
	}
}

// TestServerRebootVisible: a reboot shows REBOOT (task_state rebooting)
// until the guest is back, as clients that wait for it expect.
func TestServerRebootVisible(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t, brokertest.Peer{Name: "local-a", Transition: time.Second})
	c := se.admin(t)
	s := create(t, c, servers.CreateOpts{Name: "rb", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	waitStatus(t, c, s.ID, "ACTIVE")
	for _, tc := range []struct {
		typ    servers.RebootMethod
		status string
		task   string
	}{
		{servers.SoftReboot, "REBOOT", "rebooting"},
		{servers.HardReboot, "HARD_REBOOT", "rebooting_hard"},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			if err := servers.Reboot(ctx, c, s.ID, servers.RebootOpts{Type: tc.typ}).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			got := waitStatus(t, c, s.ID, tc.status)
			if got.TaskState != tc.task || got.VmState != "active" {
				t.Fatalf("%s: task_state %q, vm_state %q; want %q, active", tc.status, got.TaskState, got.VmState, tc.task)
			}
			waitStatus(t, c, s.ID, "ACTIVE")
		})
	}
}

// TestServerLock: a locked server refuses every change by anyone but a
// cloud admin (Nova's InstanceIsLocked, 409), shows who locked it and why,
// and an admin's lock takes an admin to lift.
func TestServerLock(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	pw := se.Member(t, "bob", "beta", identity.RoleMember)
	b := se.compute(t, "bob", pw, "beta")
	pw2 := se.Member(t, "bea", "beta", identity.RoleMember)
	b2 := se.compute(t, "bea", pw2, "beta")
	s := create(t, b, servers.CreateOpts{Name: "locked", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	waitStatus(t, b, s.ID, "ACTIVE")

	lockWithReason := map[string]any{"lock": map[string]string{"locked_reason": "maintenance"}}
	if code, _ := post(t, b, "servers/"+s.ID+"/action", lockWithReason); code != http.StatusBadRequest {
		t.Fatalf("lock with a reason at 2.1: %d; want 400 (a reason takes 2.73)", code)
	}
	if _, err := at(b, "2.73").Post(ctx, b.ServiceURL("servers", s.ID, "action"), lockWithReason, nil,
		&gophercloud.RequestOpts{OkCodes: []int{http.StatusAccepted}}); err != nil {
		t.Fatalf("lock with a reason: %v", err)
	}
	if doc := serverDoc(t, b, s.ID); doc["locked"] != true || doc["locked_reason"] != "maintenance" {
		t.Fatalf("locked server shows locked=%v locked_reason=%v", doc["locked"], doc["locked_reason"])
	}
	for _, tc := range []struct {
		name string
		c    *gophercloud.ServiceClient
		call func(c *gophercloud.ServiceClient) error
	}{
		{"the locker pauses", b, func(c *gophercloud.ServiceClient) error { return servers.Pause(ctx, c, s.ID).ExtractErr() }},
		{"another member stops", b2, func(c *gophercloud.ServiceClient) error { return servers.Stop(ctx, c, s.ID).ExtractErr() }},
		{"another member deletes", b2, func(c *gophercloud.ServiceClient) error { return servers.Delete(ctx, c, s.ID).ExtractErr() }},
		{"metadata", b2, func(c *gophercloud.ServiceClient) error {
			return servers.UpdateMetadata(ctx, c, s.ID, servers.MetadataOpts{"k": "v"}).Err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(tc.c); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
				t.Fatalf("%v; want 409 (locked)", err)
			}
		})
	}
	// Another project does not see it at all.
	opw := se.Member(t, "olga", "omega", identity.RoleMember)
	o := se.compute(t, "olga", opw, "omega")
	if err := servers.Unlock(ctx, o, s.ID).ExtractErr(); !is404(err) {
		t.Fatalf("another project unlocks: %v; want 404", err)
	}
	if err := servers.Unlock(ctx, b2, s.ID).ExtractErr(); err != nil {
		t.Fatalf("a member of the project unlocks an owner's lock: %v", err)
	}
	if doc := serverDoc(t, b, s.ID); doc["locked"] != false || doc["locked_reason"] != nil {
		t.Fatalf("unlocked server shows locked=%v locked_reason=%v", doc["locked"], doc["locked_reason"])
	}
	if err := servers.Pause(ctx, b, s.ID).ExtractErr(); err != nil {
		t.Fatalf("pause after unlock: %v", err)
	}
	waitStatus(t, b, s.ID, "PAUSED")

	// An admin's lock: a member of the admin project may not act or lift
	// it; the admin still acts.
	a := se.admin(t)
	as := create(t, a, servers.CreateOpts{Name: "admin-locked", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	waitStatus(t, a, as.ID, "ACTIVE")
	if err := servers.Lock(ctx, a, as.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	dpw := se.Member(t, "dave", "admin", identity.RoleMember)
	d := se.compute(t, "dave", dpw, "admin")
	if err := servers.Stop(ctx, d, as.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("a member stops an admin-locked server: %v; want 409", err)
	}
	if err := servers.Unlock(ctx, d, as.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("a member lifts an admin's lock: %v; want 403", err)
	}
	if err := servers.Stop(ctx, a, as.ID).ExtractErr(); err != nil {
		t.Fatalf("the admin acts on a locked server: %v", err)
	}
	waitStatus(t, a, as.ID, "SHUTOFF")
	if err := servers.Unlock(ctx, a, as.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}

// TestInstanceActions: every action is listed newest first under the
// request ID the client got, with its events for admins; a deleted
// server's actions go with it; another project sees none.
func TestInstanceActions(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	s := create(t, c, servers.CreateOpts{Name: "acts", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	waitStatus(t, c, s.ID, "ACTIVE")
	res := servers.Stop(ctx, c, s.ID)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	stopReq := res.Header.Get("X-Openstack-Request-Id")
	waitStatus(t, c, s.ID, "SHUTOFF")
	if err := servers.Start(ctx, c, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, s.ID, "ACTIVE")
	if err := servers.Lock(ctx, c, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.Stop(ctx, c, "00000000-0000-4000-8000-000000000000").ExtractErr(); !is404(err) {
		t.Fatal(err)
	}

	pages, err := instanceactions.List(c, s.ID, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acts, err := instanceactions.ExtractInstanceActions(pages)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acts {
		got = append(got, a.Action)
		if a.InstanceUUID != s.ID || a.ProjectID != se.Boot.Project.ID || a.UserID == "" || a.StartTime.IsZero() {
			t.Fatalf("action %+v", a)
		}
	}
	if want := []string{"lock", "start", "stop", "create"}; !slices.Equal(got, want) {
		t.Fatalf("actions = %v; want %v (newest first)", got, want)
	}
	stop, err := instanceactions.Get(ctx, c, s.ID, stopReq).Extract()
	if err != nil || stop.Action != "stop" || stop.Events == nil || len(*stop.Events) != 1 || (*stop.Events)[0].Event != "compute_stop_instance" || (*stop.Events)[0].Result != "Success" {
		t.Fatalf("stop action by its request ID %s = %+v, %v", stopReq, stop, err)
	}
	// From 2.62 an event says where it ran: the peer (the server's host,
	// an admin's) and the hostId the server shows.
	shown, err := servers.Get(ctx, c, s.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if stop62, err := instanceactions.Get(ctx, at(c, "2.62"), s.ID, stopReq).Extract(); err != nil || len(*stop62.Events) != 1 ||
		(*stop62.Events)[0].Host == nil || *(*stop62.Events)[0].Host != shown.AvailabilityZone ||
		(*stop62.Events)[0].HostID == nil || *(*stop62.Events)[0].HostID != shown.HostID || shown.HostID == "" {
		t.Fatalf("the stop's event at 2.62 = %+v, %v; want host %q and hostId %q", stop62.Events, err, shown.AvailabilityZone, shown.HostID)
	}
	if stop61, err := instanceactions.Get(ctx, at(c, "2.61"), s.ID, stopReq).Extract(); err != nil || (*stop61.Events)[0].Host != nil || (*stop61.Events)[0].HostID != nil {
		t.Fatalf("the stop's event at 2.61 = %+v, %v; want neither host nor hostId", stop61.Events, err)
	}
	c66 := at(c, "2.66") // paging and the time filters came with 2.58 and 2.66
	if all, _ := instanceactions.List(c, s.ID, instanceactions.ListOpts{Limit: 1}).AllPages(ctx); all != nil {
		if l, _ := instanceactions.ExtractInstanceActions(all); len(l) != 4 {
			t.Fatalf("limit at 2.1: %d actions; want the parameter ignored, as Nova does", len(l))
		}
	}
	limited, err := instanceactions.List(c66, s.ID, instanceactions.ListOpts{Limit: 1}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := instanceactions.ExtractInstanceActions(limited); len(first) != 1 || first[0].Action != "lock" {
		t.Fatalf("limit 1: %+v; want the newest action, lock", first)
	}
	future := time.Now().Add(time.Hour)
	if p, err := instanceactions.List(c66, s.ID, instanceactions.ListOpts{ChangesSince: &future}).AllPages(ctx); err != nil {
		t.Fatal(err)
	} else if l, _ := instanceactions.ExtractInstanceActions(p); len(l) != 0 {
		t.Fatalf("changes-since the future: %d actions", len(l))
	}

	// Members see actions without events; another project sees nothing.
	dpw := se.Member(t, "dave", "admin", identity.RoleMember)
	d := se.compute(t, "dave", dpw, "admin")
	if a, err := instanceactions.Get(ctx, d, s.ID, stopReq).Extract(); err != nil || a.Events != nil && len(*a.Events) != 0 {
		t.Fatalf("a member's view of the stop = %+v, %v; want no events", a, err)
	}
	if a, err := instanceactions.Get(ctx, at(d, "2.51"), s.ID, stopReq).Extract(); err != nil || a.Events == nil || len(*a.Events) != 1 {
		t.Fatalf("a member's view of the stop at 2.51 = %+v, %v; want its event", a, err)
	}
	if a, err := instanceactions.Get(ctx, at(d, "2.62"), s.ID, stopReq).Extract(); err != nil || (*a.Events)[0].Host != nil || (*a.Events)[0].HostID == nil {
		t.Fatalf("a member's view of the stop at 2.62 = %+v, %v; want its hostId, not its host", a.Events, err)
	}
	opw := se.Member(t, "olga", "omega", identity.RoleMember)
	o := se.compute(t, "olga", opw, "omega")
	if _, err := instanceactions.List(o, s.ID, nil).AllPages(ctx); !is404(err) {
		t.Fatalf("another project lists the actions: %v; want 404", err)
	}
	if _, err := instanceactions.Get(ctx, c, s.ID, "req-00000000-0000-4000-8000-000000000000").Extract(); !is404(err) {
		t.Fatalf("an unknown request ID: %v; want 404", err)
	}

	// The record goes with the server.
	if err := servers.Unlock(ctx, c, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.Delete(ctx, c, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	left, _, err := se.Store.List(ctx, "compute/server-actions/")
	if err != nil || len(left) != 0 {
		t.Fatalf("actions left after the delete: %v, %v", left, err)
	}
}

// TestServerResize resizes m1.tiny to m1.small and back: RESIZE, then
// VERIFY_RESIZE with the new flavor; the quota counts the larger flavor
// while it waits, the old one again after a revert, the new one after a
// confirm; a resize past the quota is refused before the peer is asked.
func TestServerResize(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t, brokertest.Peer{Name: "local-a"})
	c := se.admin(t)
	s := create(t, c, servers.CreateOpts{Name: "rs", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	waitStatus(t, c, s.ID, "ACTIVE")
	used := func(t *testing.T, wantRAM int) {
		t.Helper()
		lim, err := limits.Get(ctx, c, nil).Extract()
		if err != nil || lim.Absolute.TotalRAMUsed != wantRAM || lim.Absolute.TotalInstancesUsed != 1 {
			t.Fatalf("limits = %+v, %v; want %d MiB of RAM used by one server", lim.Absolute, err, wantRAM)
		}
	}
	resize := func(t *testing.T, flavor string) {
		t.Helper()
		if err := servers.Resize(ctx, c, s.ID, servers.ResizeOpts{FlavorRef: flavor}).ExtractErr(); err != nil {
			t.Fatalf("resize to %s: %v", flavor, err)
		}
		got := waitStatus(t, c, s.ID, "VERIFY_RESIZE")
		if got.Flavor["id"] != flavor || got.VmState != "resized" || got.TaskState != "" {
			t.Fatalf("VERIFY_RESIZE: flavor %v, vm_state %q, task_state %q; want %s, resized, none", got.Flavor["id"], got.VmState, got.TaskState, flavor)
		}
		used(t, 2048) // the larger of both while it waits
	}
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"same flavor", func(t *testing.T) {
			if err := servers.Resize(ctx, c, s.ID, servers.ResizeOpts{FlavorRef: "1"}).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
				t.Fatalf("%v; want 400", err)
			}
		}},
		{"unknown flavor", func(t *testing.T) {
			if err := servers.Resize(ctx, c, s.ID, servers.ResizeOpts{FlavorRef: "m9.huge"}).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
				t.Fatalf("%v; want 400", err)
			}
		}},
		{"confirm without a resize", func(t *testing.T) {
			if err := servers.ConfirmResize(ctx, c, s.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
				t.Fatalf("%v; want 409", err)
			}
		}},
		{"resize", func(t *testing.T) { resize(t, "2") }},
		{"pause while verifying", func(t *testing.T) {
			if err := servers.Pause(ctx, c, s.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
				t.Fatalf("%v; want 409", err)
			}
		}},
		{"revert", func(t *testing.T) {
			if err := servers.RevertResize(ctx, c, s.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if got := waitStatus(t, c, s.ID, "ACTIVE"); got.Flavor["id"] != "1" {
				t.Fatalf("reverted to flavor %v; want 1", got.Flavor["id"])
			}
			used(t, 512)
		}},
		{"over quota", func(t *testing.T) {
			if _, err := quotasets.Update(ctx, c, se.Boot.Project.ID, quotasets.UpdateOpts{RAM: intp(1024)}).Extract(); err != nil {
				t.Fatal(err)
			}
			if err := servers.Resize(ctx, c, s.ID, servers.ResizeOpts{FlavorRef: "2"}).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
				t.Fatalf("%v; want 403 (quota)", err)
			}
			if _, err := quotasets.Update(ctx, c, se.Boot.Project.ID, quotasets.UpdateOpts{RAM: intp(-1)}).Extract(); err != nil {
				t.Fatal(err)
			}
			used(t, 512)
		}},
		{"resize again", func(t *testing.T) { resize(t, "2") }},
		{"confirm", func(t *testing.T) {
			if err := servers.ConfirmResize(ctx, c, s.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if got := waitStatus(t, c, s.ID, "ACTIVE"); got.Flavor["id"] != "2" {
				t.Fatalf("confirmed with flavor %v; want 2", got.Flavor["id"])
			}
			used(t, 2048)
		}},
		{"delete frees the new flavor", func(t *testing.T) {
			if err := servers.Delete(ctx, c, s.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			lim, err := limits.Get(ctx, c, nil).Extract()
			if err != nil || lim.Absolute.TotalRAMUsed != 0 || lim.Absolute.TotalCoresUsed != 0 || lim.Absolute.TotalInstancesUsed != 0 {
				t.Fatalf("limits after the delete = %+v, %v; want nothing used", lim.Absolute, err)
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.run) {
			return
		}
	}
}

// TestServerResetState: an admin forces a server ERROR and back ACTIVE
// (os-resetState); a member may not; a state other than active or error
// is refused.
func TestServerResetState(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t, brokertest.Peer{Name: "local-a"})
	c := se.admin(t)
	s := create(t, c, servers.CreateOpts{Name: "rst", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	waitStatus(t, c, s.ID, "ACTIVE")
	dpw := se.Member(t, "dave", "admin", identity.RoleMember)
	d := se.compute(t, "dave", dpw, "admin")
	steps := []struct {
		name     string
		c        *gophercloud.ServiceClient
		state    servers.ServerState
		wantCode int
		status   string
	}{
		{"a member", d, servers.StateError, http.StatusForbidden, "ACTIVE"},
		{"an unknown state", c, "stopped", http.StatusBadRequest, "ACTIVE"},
		{"error", c, servers.StateError, 0, "ERROR"},
		{"active", c, servers.StateActive, 0, "ACTIVE"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := servers.ResetState(ctx, st.c, s.ID, st.state).ExtractErr()
			if st.wantCode != 0 && !gophercloud.ResponseCodeIs(err, st.wantCode) || st.wantCode == 0 && err != nil {
				t.Fatalf("%v; want %d", err, st.wantCode)
			}
			if got, err := servers.Get(ctx, c, s.ID).Extract(); err != nil || got.Status != st.status {
				t.Fatalf("status %s, %v; want %s at once", got.Status, err, st.status)
			}
		})
	}
}
