package network_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/registry"
)

// listCountingStore is a memory Store that records the prefixes listed
// other than the roots the replicas' memories follow (their loads): the
// lists a request made.
type listCountingStore struct {
	*registry.Memory
	mu     sync.Mutex
	listed []string
}

// watchedRoots are the prefixes the replicas' memories list to load.
var watchedRoots = []string{"index/", "neutron/attrs/", "neutron/security-groups/"}

func (s *listCountingStore) List(ctx context.Context, prefix string) ([]registry.KV, uint64, error) {
	if !slices.Contains(watchedRoots, prefix) {
		s.mu.Lock()
		s.listed = append(s.listed, prefix)
		s.mu.Unlock()
	}
	return s.Memory.List(ctx, prefix)
}

func (s *listCountingStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.listed
	s.listed = nil
	return out
}

// TestSecurityGroupsFromMemory: security groups and their rules are
// listed, found and checked from each replica's memory, which a Store
// watch feeds: no request lists the Store, on the replica that wrote them
// or on another; a group the other replica just made is found by ID
// before the watch delivers it (its one key); writes still go to the
// Store with compare-and-swap, and a group a port names cannot go.
func TestSecurityGroupsFromMemory(t *testing.T) {
	ctx := context.Background()
	e := brokertest.New(t, []brokertest.Peer{{Name: "p1"}}, nil)
	store := &listCountingStore{Memory: registry.NewMemory()}
	a, b := newReplica(t, e, store), newReplica(t, e, store)
	store.take()

	groups, err := a.SecurityGroups(ctx, "alpha")
	if err != nil || len(groups) != 1 || groups[0].Name != network.DefaultSecurityGroup {
		t.Fatalf("first list = %+v, %v; want the default group", groups, err)
	}
	web, err := a.CreateSecurityGroup(ctx, "alpha", "web", "http in", true)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.SecurityGroup(ctx, "alpha", web.ID); err != nil || got.Name != "web" {
		t.Fatalf("the other replica's show before its watch = %+v, %v", got, err)
	}
	rule, err := a.CreateSecurityGroupRule(ctx, "alpha", network.SecurityGroupRule{SecurityGroupID: web.ID, Direction: "ingress", Protocol: "tcp",
		PortRangeMin: ptr(80), PortRangeMax: ptr(80)})
	if err != nil {
		t.Fatal(err)
	}
	caughtUp(t, store, "neutron/security-groups/alpha/"+web.ID, b.GroupsMemory.WaitIndex)

	for _, tc := range []struct {
		name string
		r    replica
	}{
		{"the writing replica", a},
		{"the other replica", b},
	} {
		t.Run(tc.name, func(t *testing.T) {
			groups, err := tc.r.SecurityGroups(ctx, "alpha")
			if err != nil || len(groups) != 2 || groups[0].Name != network.DefaultSecurityGroup || groups[1].ID != web.ID {
				t.Fatalf("list = %+v, %v; want default and web", groups, err)
			}
			if len(groups[1].Rules) != 3 {
				t.Fatalf("web's rules = %+v; want its 2 egress rules and the new one", groups[1].Rules)
			}
			if got, err := tc.r.FindSecurityGroup(ctx, "alpha", "web"); err != nil || got.ID != web.ID {
				t.Fatalf("find by name = %+v, %v", got, err)
			}
			if got, err := tc.r.SecurityGroupRule(ctx, "alpha", rule.ID); err != nil || got.ID != rule.ID {
				t.Fatalf("show rule = %+v, %v", got, err)
			}
			if rules, err := tc.r.SecurityGroupRules(ctx, "alpha"); err != nil || len(rules) != 7 {
				t.Fatalf("rules = %d, %v; want the default's 4 and web's 3", len(rules), err)
			}
			if others, err := tc.r.SecurityGroups(ctx, "beta"); err != nil || len(others) != 1 || others[0].Project != "beta" {
				t.Fatalf("another project's list = %+v, %v; want only its own default group", others, err)
			}
			if _, err := tc.r.SecurityGroup(ctx, "beta", web.ID); !errors.Is(err, network.ErrNotFound) {
				t.Fatalf("another project's show of web = %v, want not found", err)
			}
			if listed := store.take(); len(listed) > 0 {
				t.Fatalf("requests listed the Store: %v", listed)
			}
		})
	}

	// A port naming web holds it; once the port goes, web may go.
	net, err := a.CreateNetwork(ctx, "alpha", network.NetworkCreate{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateSubnet(ctx, "alpha", network.SubnetCreate{NetworkID: net.Ref.ID, CIDR: "10.2.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	port, err := a.CreatePort(ctx, "alpha", network.PortCreate{NetworkID: net.Ref.ID, SecurityGroups: []string{web.ID}})
	if err != nil {
		t.Fatal(err)
	}
	store.take()
	if err := a.DeleteSecurityGroup(ctx, "alpha", web.ID); !errors.Is(err, network.ErrInUse) {
		t.Fatalf("delete a group a port names = %v, want in use", err)
	}
	if listed := store.take(); len(listed) > 0 {
		t.Fatalf("the in-use check listed the Store: %v", listed)
	}
	if err := a.DeletePort(ctx, "alpha", port.Ref.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteSecurityGroup(ctx, "alpha", web.ID); err != nil {
		t.Fatalf("delete the group once no port names it: %v", err)
	}
	if groups, err := a.SecurityGroups(ctx, "alpha"); err != nil || len(groups) != 1 {
		t.Fatalf("list after the delete = %+v, %v; want the default group only", groups, err)
	}
	if _, err := a.SecurityGroup(ctx, "alpha", web.ID); !errors.Is(err, network.ErrNotFound) {
		t.Fatalf("show the deleted group = %v, want not found", err)
	}
}
