package peertest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/peers"
)

// testSecurityGroups checks peers.SecurityGroups, for a cloud that has
// it: groups put and replaced, ports put in them at create and after,
// a server's ports in the groups it was booted with, and the refusals
// (an unknown group, a group in use, an invalid rule). Whether packets
// obey the rules is each driver's own test (real guests on the local
// cloud); this checks the contract every driver keeps.
func (s *suite) testSecurityGroups(t *testing.T) {
	sg, ok := s.c.(peers.SecurityGroups)
	if !ok {
		t.Skip("the cloud does not implement peers.SecurityGroups")
	}
	s.gap(t)
	ctx := t.Context()
	port := func(n int) *int { return &n }
	web := peers.SecurityGroup{ID: uuid.NewString(), Project: s.fx.Project, Name: s.name("web"), Rules: []peers.SecurityRule{
		{Direction: "egress", EtherType: "IPv4"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: port(80), PortRangeMax: port(80), RemoteIPPrefix: "0.0.0.0/0"},
	}}
	db := peers.SecurityGroup{ID: uuid.NewString(), Project: s.fx.Project, Name: s.name("db"), Rules: []peers.SecurityRule{
		// db names web, and web will name db: groups may name each other.
		{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: port(5432), PortRangeMax: port(5432), RemoteGroupID: web.ID},
	}}
	for _, g := range []peers.SecurityGroup{web, db} {
		if err := sg.PutSecurityGroup(ctx, g); err != nil {
			t.Fatalf("PutSecurityGroup(%s): %v", g.Name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := s.cleanupCtx()
			defer cancel()
			if err := sg.DeleteSecurityGroup(ctx, g.ID); err != nil && !errors.Is(err, peers.ErrNotFound) {
				t.Errorf("cleanup: DeleteSecurityGroup(%s): %v", g.ID, err)
			}
		})
	}
	web.Rules = append(web.Rules, peers.SecurityRule{Direction: "ingress", EtherType: "IPv4", Protocol: "icmp", RemoteGroupID: db.ID})
	if err := sg.PutSecurityGroup(ctx, web); err != nil {
		t.Fatalf("PutSecurityGroup(%s) again, with a rule naming %s: %v", web.Name, db.Name, err)
	}
	bad := web
	bad.Rules = append(slices.Clone(web.Rules), peers.SecurityRule{Direction: "sideways", EtherType: "IPv4"})
	wantErr(t, "PutSecurityGroup with a rule whose direction is neither ingress nor egress", sg.PutSecurityGroup(ctx, bad), peers.ErrInvalid)

	net, _ := s.makeNetwork(t, "10.83.0.0/24")
	p, err := s.c.CreatePort(ctx, peers.PortSpec{Name: s.name("port"), Project: s.fx.Project, NetworkID: net.ID, Metadata: s.meta(), SecurityGroups: []string{web.ID}})
	if err != nil {
		t.Fatalf("CreatePort in group %s: %v", web.Name, err)
	}
	s.cleanupPort(t, p.ID)
	wantGroups := func(what, portID string, want ...string) {
		t.Helper()
		got, err := s.c.GetPort(ctx, portID)
		if err != nil {
			t.Fatalf("%s: GetPort(%s): %v", what, portID, err)
		}
		if !sameSet(got.SecurityGroups, want) {
			t.Fatalf("%s: port %s is in groups %v, want %v", what, portID, got.SecurityGroups, want)
		}
	}
	wantGroups("CreatePort", p.ID, web.ID)
	if err := sg.SetPortSecurityGroups(ctx, p.ID, []string{web.ID, db.ID}); err != nil {
		t.Fatalf("SetPortSecurityGroups(%s, both): %v", p.ID, err)
	}
	wantGroups("SetPortSecurityGroups(both)", p.ID, web.ID, db.ID)
	wantErr(t, "SetPortSecurityGroups with a group never put", sg.SetPortSecurityGroups(ctx, p.ID, []string{uuid.NewString()}), peers.ErrNotFound)
	wantGroups("a refused SetPortSecurityGroups", p.ID, web.ID, db.ID)
	wantErr(t, "SetPortSecurityGroups of an unknown port", sg.SetPortSecurityGroups(ctx, "peertest-no-such-port-"+s.run, []string{web.ID}), peers.ErrNotFound)
	wantErr(t, "DeleteSecurityGroup of a group a port is in", sg.DeleteSecurityGroup(ctx, db.ID), peers.ErrConflict)
	if err := sg.SetPortSecurityGroups(ctx, p.ID, []string{web.ID}); err != nil {
		t.Fatalf("SetPortSecurityGroups(%s, web): %v", p.ID, err)
	}
	wantGroups("SetPortSecurityGroups(web)", p.ID, web.ID)

	t.Run("Server", func(t *testing.T) {
		srv, err := s.c.CreateServer(ctx, peers.ServerSpec{
			Name: s.name("server"), Project: s.fx.Project, FlavorID: s.fx.FlavorID, ImageID: s.fx.ImageID,
			Networks: []peers.NetworkAttachment{{NetworkID: net.ID}}, Metadata: s.meta(), SecurityGroups: []string{db.ID},
		})
		if err != nil {
			t.Fatalf("CreateServer in group %s: %v", db.Name, err)
		}
		s.cleanupServer(t, srv.ID)
		s.waitServer(t, srv.ID, peers.ServerActive)
		var ports []peers.Port
		s.mustPoll(t, "the server's port", func(ctx context.Context) (bool, string, error) {
			all, err := s.c.ListPorts(ctx, peers.ListOptions{})
			ports = slices.DeleteFunc(all, func(p peers.Port) bool { return p.DeviceID != srv.ID })
			return len(ports) == 1, "", err
		})
		wantGroups("CreateServer", ports[0].ID, db.ID)
		wantErr(t, "DeleteSecurityGroup of a server's group", sg.DeleteSecurityGroup(ctx, db.ID), peers.ErrConflict)
		if err := sg.SetPortSecurityGroups(ctx, ports[0].ID, []string{web.ID, db.ID}); err != nil {
			t.Fatalf("SetPortSecurityGroups on the server's port: %v", err)
		}
		wantGroups("SetPortSecurityGroups on the server's port", ports[0].ID, web.ID, db.ID)
		_, err = s.c.CreateServer(ctx, peers.ServerSpec{
			Name: s.name("server"), Project: s.fx.Project, FlavorID: s.fx.FlavorID, ImageID: s.fx.ImageID,
			Networks: []peers.NetworkAttachment{{NetworkID: net.ID}}, Metadata: s.meta(), SecurityGroups: []string{uuid.NewString()},
		})
		wantErr(t, "CreateServer in a group never put", err, peers.ErrNotFound, peers.ErrInvalid)
	})
}

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y)) && (a == nil) == (b == nil)
}
