package consul_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// catalogView is what an operator sees for one peer in the health API.
type catalogView struct {
	found  bool
	tags   []string
	meta   map[string]string
	status string
	output string
}

// waitCatalog follows the health API with blocking queries until cond holds
// for the peer, and returns that view. The agent syncs registrations to the
// catalog asynchronously, so the test waits for the state it expects; the
// bound is the test's context, not a timer.
func waitCatalog(ctx context.Context, t *testing.T, client *api.Client, peerID string, cond func(catalogView) bool) catalogView {
	t.Helper()
	var index uint64
	var last catalogView
	for {
		q := (&api.QueryOptions{WaitIndex: index}).WithContext(ctx)
		entries, meta, err := client.Health().Service(consul.ServiceName, "", false, q)
		if err != nil {
			t.Fatalf("health service: %v (last view %+v)", err, last)
		}
		last = catalogView{}
		for _, e := range entries {
			if e.Service.ID != consul.ServiceID(peerID) {
				continue
			}
			last = catalogView{found: true, tags: e.Service.Tags, meta: e.Service.Meta}
			for _, c := range e.Checks {
				if c.CheckID == consul.CheckID(peerID) {
					last.status, last.output = c.Status, c.Output
				}
			}
		}
		if cond(last) {
			return last
		}
		index = meta.LastIndex
	}
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	s := newStore(t, a, "catalog/")
	client := a.Client()
	ctx := ctxT(t)

	peer := registry.Peer{
		ID:     "p-123",
		Name:   "lab-east",
		Kind:   registry.KindOpenStack,
		Labels: map[string]string{"region": "east", "tier": "gold"},
	}
	if err := s.RegisterPeer(ctx, peer); err != nil {
		t.Fatalf("RegisterPeer: %v", err)
	}
	v := waitCatalog(ctx, t, client, peer.ID, func(v catalogView) bool { return v.found })
	wantTags := []string{"kind=openstack", "name=lab-east", "region=east", "tier=gold"}
	if !slices.Equal(v.tags, wantTags) {
		t.Errorf("tags = %v, want %v", v.tags, wantTags)
	}
	if v.meta["peer_id"] != "p-123" || v.meta["peer_name"] != "lab-east" || v.meta["kind"] != "openstack" {
		t.Errorf("meta = %v", v.meta)
	}
	if v.status != api.HealthCritical {
		t.Errorf("a peer registered without a status is %q, want critical until probed", v.status)
	}

	// Each step changes the check's status, which the agent pushes to the
	// catalog at once (output-only changes it pushes lazily).
	for _, step := range []struct {
		status     registry.Status
		note       string
		wantStatus string
		wantOutput string
	}{
		{registry.StatusUp, "probe ok", api.HealthPassing, "probe ok"},
		{registry.StatusDegraded, "quota 95% used", api.HealthWarning, "quota 95% used"},
		{registry.StatusDown, "keystone unreachable", api.HealthCritical, "keystone unreachable"},
		{registry.StatusUp, "recovered", api.HealthPassing, "recovered"},
		{registry.StatusMaintenance, "hypervisor upgrade", api.HealthCritical, "maintenance: hypervisor upgrade"},
	} {
		t.Run(string(step.status)+"/"+step.note, func(t *testing.T) {
			if err := s.SetHealth(ctx, peer.ID, step.status, step.note); err != nil {
				t.Fatalf("SetHealth: %v", err)
			}
			v := waitCatalog(ctx, t, client, peer.ID, func(v catalogView) bool { return v.status == step.wantStatus })
			if v.output != step.wantOutput {
				t.Fatalf("check output = %q, want %q", v.output, step.wantOutput)
			}
		})
	}

	if err := s.DeregisterPeer(ctx, peer.ID); err != nil {
		t.Fatalf("DeregisterPeer: %v", err)
	}
	waitCatalog(ctx, t, client, peer.ID, func(v catalogView) bool { return !v.found })
	if err := s.DeregisterPeer(ctx, peer.ID); err != nil {
		t.Fatalf("DeregisterPeer of a removed peer = %v, want nil", err)
	}
	if err := s.SetHealth(ctx, peer.ID, registry.StatusUp, ""); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("SetHealth of a removed peer = %v, want ErrNotFound (so the caller re-registers)", err)
	}
}

// TestRegisterPeerRefreshes: registering again replaces tags and applies the
// record's status and reason.
func TestRegisterPeerRefreshes(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	s := newStore(t, a, "catalog-refresh/")
	ctx := ctxT(t)

	p := registry.Peer{ID: "p1", Name: "old-name", Kind: registry.KindLocal}
	if err := s.RegisterPeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Name, p.Status, p.StatusReason = "new-name", registry.StatusDegraded, "slow API"
	if err := s.RegisterPeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	v := waitCatalog(ctx, t, a.Client(), p.ID, func(v catalogView) bool {
		return v.status == api.HealthWarning && slices.Contains(v.tags, "name=new-name")
	})
	if v.output != "slow API" || slices.Contains(v.tags, "name=old-name") || v.meta["peer_name"] != "new-name" {
		t.Fatalf("refreshed registration = %+v", v)
	}
	services, err := a.Client().Agent().ServicesWithFilter(`Service == "` + consul.ServiceName + `"`)
	if err != nil || len(services) != 1 {
		t.Fatalf("agent has %d cloudmux-peer instances (%v), want 1", len(services), err)
	}
}

func TestCatalogRejectsBadInput(t *testing.T) {
	t.Parallel()
	// Validation happens before any request, so no agent is needed.
	s, err := consul.New(consul.Config{Address: closedAddr(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"register empty id", func() error { return s.RegisterPeer(ctx, registry.Peer{Name: "x"}) }},
		{"register id with slash", func() error { return s.RegisterPeer(ctx, registry.Peer{ID: "a/b"}) }},
		{"register id with space", func() error { return s.RegisterPeer(ctx, registry.Peer{ID: "a b"}) }},
		{"deregister dot-dot", func() error { return s.DeregisterPeer(ctx, "..") }},
		{"health unknown status", func() error { return s.SetHealth(ctx, "p1", registry.Status("sideways"), "") }},
		{"health empty id", func() error { return s.SetHealth(ctx, "", registry.StatusUp, "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, registry.ErrInvalid) || errors.Is(err, registry.ErrUnavailable) {
				t.Fatalf("= %v, want ErrInvalid before any request", err)
			}
			if fe := registry.FieldErrors(err); len(fe) != 1 || !strings.Contains("id status", fe[0].Field) {
				t.Fatalf("field errors = %v", fe)
			}
		})
	}
}
