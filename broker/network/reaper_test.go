package network_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cloudmux/cloudmux/broker/gc"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/peers"
)

// TestGroupsOfGoneProjects: once Keystone deletes a project, the gc
// deletes its security groups' copies from the peers holding one, then
// the groups; while a port still uses a copy, the peer refuses and the
// group stays, to be released on a later pass. A live project's groups
// are never touched.
func TestGroupsOfGoneProjects(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	eve := client(t, e, "eve", e.Member(t, "eve", "doomed", identity.RoleMember), "doomed")
	bob := client(t, e, "bob", e.Member(t, "bob", "kept", identity.RoleMember), "kept")
	doomed, err := e.Dir.FindProject(ctx, identity.DefaultDomainID, "doomed")
	if err != nil {
		t.Fatal(err)
	}
	kept, err := e.Dir.FindProject(ctx, identity.DefaultDomainID, "kept")
	if err != nil {
		t.Fatal(err)
	}
	// A port in each project puts its default group on the peer.
	port, err := ports.Create(ctx, eve, ports.CreateOpts{NetworkID: e.seeded.NetworkID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ports.Create(ctx, bob, ports.CreateOpts{NetworkID: e.seeded.NetworkID}).Extract(); err != nil {
		t.Fatal(err)
	}
	var east peers.SecurityGroups
	for _, m := range e.Pool.Members() {
		if m.Peer.Name == "east" {
			east = m.Cloud.(peers.SecurityGroups)
		}
	}
	if err := e.Dir.DeleteProject(ctx, doomed.ID); err != nil {
		t.Fatal(err)
	}

	reaper := &gc.Orphans{Kind: "security-groups", Store: e.Store, Prefixes: []string{network.GroupsPrefix},
		Orphaned: network.GroupsOfGoneProjects(func(ctx context.Context) (map[string]bool, error) {
			ps, err := e.Dir.ListProjects(ctx)
			out := map[string]bool{}
			for _, p := range ps {
				out[p.ID] = true
			}
			return out, err
		}),
		Release: e.svc.ReleaseGroupCopies}
	stored := func(project string) int {
		kvs, _, err := e.Store.List(ctx, network.GroupsPrefix+project+"/")
		if err != nil {
			t.Fatal(err)
		}
		return len(kvs)
	}
	now := time.Now()
	if n, err := reaper.Collect(ctx, now); err != nil || n != 0 {
		t.Fatalf("first sighting: removed %d, %v; want 0, nil", n, err)
	}
	// The deleted project's port still uses the copy: the peer refuses.
	if n, err := reaper.Collect(ctx, now.Add(time.Second)); err == nil || n != 0 || stored(doomed.ID) != 1 {
		t.Fatalf("with a port in the copy: removed %d, err %v, %d groups stored; want 0, the peer's refusal, 1 kept", n, err, stored(doomed.ID))
	} else if strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("the error names an address: %v", err)
	}
	if err := ports.Delete(ctx, eve, port.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if n, err := reaper.Collect(ctx, now.Add(2*time.Second)); err != nil || n != 1 {
		t.Fatalf("once no port uses it: removed %d, %v; want 1, nil", n, err)
	}
	if got := stored(doomed.ID); got != 0 {
		t.Fatalf("%d groups of the deleted project stored; want 0", got)
	}
	if err := east.DeleteSecurityGroup(ctx, network.DefaultSecurityGroupID(doomed.ID)); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("the peer's copy of the deleted project's default group: delete again = %v; want ErrNotFound (already gone)", err)
	}
	if got := stored(kept.ID); got != 1 {
		t.Fatalf("%d groups of the live project stored; want its default group kept", got)
	}
}
