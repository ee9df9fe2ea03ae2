package network_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// laggingStore is a Store whose watches never answer: a replica whose
// memories follow it holds only what it loaded and what it wrote itself,
// as a replica whose watch has not delivered another's writes yet.
type laggingStore struct{ registry.Store }

func (s laggingStore) Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error) {
	<-ctx.Done()
	return nil, 0, ctx.Err()
}

// laggingReplica: its memories follow a lagging watch; it writes the Store.
func laggingReplica(t *testing.T, e *brokertest.Env, store registry.Store) replica {
	lag := laggingStore{store}
	idx := index.New(lag).WithLog(e.Log)
	attrs, groups := network.NewAttrsMemory(lag, e.Log), network.NewGroupsMemory(lag, e.Log)
	e.Start(t, idx, attrs, groups)
	return replica{Service: &network.Service{Pool: e.Pool, Index: idx, Store: store, AttrsMemory: attrs, GroupsMemory: groups,
		Placer: policy.Default{}, Log: e.Log, BrokerID: "test-broker"}, index: idx}
}

// TestRuleJustCreatedElsewhere: a rule created on replica a is at once in
// the Store; replica b, whose watch has not delivered it yet, still shows
// and deletes it (it used to answer "not found").
func TestRuleJustCreatedElsewhere(t *testing.T) {
	ctx := context.Background()
	e := brokertest.New(t, []brokertest.Peer{{Name: "p1"}}, nil)
	store := registry.NewMemory()
	a := newReplica(t, e, store)
	web, err := a.CreateSecurityGroup(ctx, "alpha", "web", "", true)
	if err != nil {
		t.Fatal(err)
	}
	b := laggingReplica(t, e, store) // loaded web, then its watch lags
	rule, err := a.CreateSecurityGroupRule(ctx, "alpha", network.SecurityGroupRule{SecurityGroupID: web.ID, Direction: "ingress", Protocol: "tcp",
		PortRangeMin: ptr(22), PortRangeMax: ptr(22)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.SecurityGroupRule(ctx, "alpha", rule.ID); err != nil {
		t.Errorf("show of a rule created (and acknowledged) on another replica: %v", err)
	}
	if err := b.DeleteSecurityGroupRule(ctx, "alpha", rule.ID); err != nil {
		t.Errorf("delete of a rule created on another replica: %v", err)
	}
}

// TestGroupCreatedElsewhereByName: a group made on a is found by name and
// by ID on b before b's watch brings it (FindSecurityGroup: Nova's
// security_groups, EC2).
func TestGroupCreatedElsewhereByName(t *testing.T) {
	ctx := context.Background()
	e := brokertest.New(t, []brokertest.Peer{{Name: "p1"}}, nil)
	store := registry.NewMemory()
	a := newReplica(t, e, store)
	if _, err := a.SecurityGroups(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	b := laggingReplica(t, e, store)
	web, err := a.CreateSecurityGroup(ctx, "alpha", "web", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.FindSecurityGroup(ctx, "alpha", web.ID); err != nil {
		t.Errorf("find by ID of a group made on another replica: %v", err)
	}
	if _, err := b.FindSecurityGroup(ctx, "alpha", "web"); err != nil {
		t.Errorf("find by name of a group made on another replica: %v", err)
	}
}

// TestDeletedGroupNotNamed: a group deleted on a is refused by b for a new
// port and as a rule's remote group, though b's memory still holds it
// (both checks read the Store).
func TestDeletedGroupNotNamed(t *testing.T) {
	ctx := context.Background()
	e := brokertest.New(t, []brokertest.Peer{{Name: "p1"}}, nil)
	store := registry.NewMemory()
	a := newReplica(t, e, store)
	web, err := a.CreateSecurityGroup(ctx, "alpha", "web", "", true)
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.CreateSecurityGroup(ctx, "alpha", "other", "", true)
	if err != nil {
		t.Fatal(err)
	}
	net, err := a.CreateNetwork(ctx, "alpha", network.NetworkCreate{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateSubnet(ctx, "alpha", network.SubnetCreate{NetworkID: net.Ref.ID, CIDR: "10.3.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	b := laggingReplica(t, e, store)
	if err := a.DeleteSecurityGroup(ctx, "alpha", web.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreatePort(ctx, "alpha", network.PortCreate{NetworkID: net.Ref.ID, SecurityGroups: []string{web.ID}}); !errors.Is(err, network.ErrNotFound) {
		t.Errorf("a port naming a deleted group: %v, want not found", err)
	}
	_, err = b.CreateSecurityGroupRule(ctx, "alpha", network.SecurityGroupRule{SecurityGroupID: other.ID, Direction: "ingress", RemoteGroupID: web.ID})
	if !errors.Is(err, network.ErrNotFound) {
		t.Errorf("a rule whose remote group was deleted: %v, want not found", err)
	}
}

// TestDeleteGroupDropsRemoteRuleMadeElsewhere: a rule of another group
// naming web as its remote group, made on a, goes with b's delete of web
// though b's memory lacks it.
func TestDeleteGroupDropsRemoteRuleMadeElsewhere(t *testing.T) {
	ctx := context.Background()
	e := brokertest.New(t, []brokertest.Peer{{Name: "p1"}}, nil)
	store := registry.NewMemory()
	a := newReplica(t, e, store)
	web, err := a.CreateSecurityGroup(ctx, "alpha", "web", "", true)
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.CreateSecurityGroup(ctx, "alpha", "other", "", true)
	if err != nil {
		t.Fatal(err)
	}
	b := laggingReplica(t, e, store)
	if _, err := a.CreateSecurityGroupRule(ctx, "alpha", network.SecurityGroupRule{SecurityGroupID: other.ID, Direction: "ingress", RemoteGroupID: web.ID}); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteSecurityGroup(ctx, "alpha", web.ID); err != nil {
		t.Fatal(err)
	}
	// The Store, not a's memory, which may not have b's change yet.
	kv, err := store.Get(ctx, "neutron/security-groups/alpha/"+other.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got network.SecurityGroup
	if err := json.Unmarshal(kv.Value, &got); err != nil {
		t.Fatal(err)
	}
	for _, r := range got.Rules {
		if r.RemoteGroupID == web.ID {
			t.Errorf("a rule naming the deleted group stays: %+v", r)
		}
	}
}

// portsFailing fails every port list, as a peer whose port list times out.
type portsFailing struct {
	*localcloud.Cloud
	fail *atomic.Bool
}

func (c portsFailing) ListPorts(ctx context.Context, o peers.ListOptions) ([]peers.Port, error) {
	if c.fail.Load() {
		return nil, peers.ErrUnavailable
	}
	return c.Cloud.ListPorts(ctx, o)
}

// TestSharedFlagRefreshedWhenPortsFail: a peer whose port list fails still
// has its shared flag refreshed by discovery's read of its networks, so a
// shared network its admin adds shows in lists (the flag used to stay as
// the first network-only read left it, and lists skipped the peer).
func TestSharedFlagRefreshedWhenPortsFail(t *testing.T) {
	ctx := context.Background()
	fail := &atomic.Bool{}
	var clouds = map[string]*localcloud.Cloud{}
	e := brokertest.New(t, []brokertest.Peer{{Name: "p1"}, {Name: "p2", Wrap: func(c *localcloud.Cloud) peers.Cloud {
		clouds["p2"] = c
		return portsFailing{Cloud: c, fail: fail}
	}}}, nil)
	fail.Store(true)
	r := newReplica(t, e, registry.NewMemory())
	r.Discover(ctx) // p2 fails (its ports)
	if v, err := r.List(ctx, "beta", false); err != nil || len(v.Failed) > 0 {
		t.Fatalf("first list: %+v, %v", v, err)
	} // reads p2 (never read), networks only: loaded, no shared network
	// p2's own admin makes a shared network (not through the broker).
	if _, err := clouds["p2"].CreateNetwork(ctx, peers.NetworkSpec{Name: "public", Project: "admin", Shared: true}); err != nil {
		t.Fatal(err)
	}
	r.Discover(ctx)
	r.Discover(ctx)
	v, err := r.List(ctx, "beta", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Networks) != 1 {
		t.Errorf("beta's list after two discoveries: %d networks, want the new shared one", len(v.Networks))
	}
}
