package network_test

import (
	"context"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// replicaStore is the Store the broker replicas of a test share: a
// Consul agent's when CONSUL_BIN names one, a memory store otherwise.
func replicaStore(t testing.TB) registry.Store {
	t.Helper()
	if os.Getenv("CONSUL_BIN") == "" {
		t.Log("CONSUL_BIN unset: the replicas share a memory store")
		return registry.NewMemory()
	}
	agent := consultest.Start(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	store, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: "neutron-" + uuid.NewString()[:8] + "/"}, log)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// replica is one broker's network service over store and the
// environment's peers, with its index and attributes in memory.
type replica struct {
	*network.Service
	index *index.Index
}

func newReplica(t testing.TB, e *brokertest.Env, store registry.Store) replica {
	t.Helper()
	idx := index.New(store).WithLog(e.Log)
	attrs, groups := network.NewAttrsMemory(store, e.Log), network.NewGroupsMemory(store, e.Log)
	e.Start(t, idx, attrs, groups)
	return replica{Service: &network.Service{Pool: e.Pool, Index: idx, Store: store, AttrsMemory: attrs, GroupsMemory: groups,
		Placer: policy.Default{}, Log: e.Log, BrokerID: "test-broker"}, index: idx}
}

// caughtUp waits until a memory (its WaitIndex) holds the Store's key as
// it is now, another replica's write, as its watch delivers it.
func caughtUp(t *testing.T, store registry.Store, key string, waitIndex func(context.Context, uint64) error) {
	t.Helper()
	kv, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitIndex(context.Background(), kv.ModifyIndex); err != nil {
		t.Fatal(err)
	}
}

// askedPeers counts which peers were asked anything.
type askedPeers map[string]*atomic.Int64

func (a askedPeers) reset() {
	for _, c := range a {
		c.Store(0)
	}
}

func (a askedPeers) asked() []string {
	var out []string
	for name, c := range a {
		if c.Load() > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func networkIDs(v network.Visible) []string {
	var out []string
	for _, n := range v.Networks {
		out = append(out, n.Ref.ID)
	}
	return out
}

// TestListReadsOnlyThePeersItNeeds: with five peers and two broker
// replicas on one Store, a project's list reads only the peers holding its
// networks, subnets and ports (or its servers' ports), plus the peers with
// shared or external networks, on either replica. A network a broker
// creates shared on a third peer shows at once in another project's list
// on the other replica, which learnt of it from its index watch, not from
// a discovery. A replica that never read the peers reads them all once; an
// admin's list of every project reads every peer; a peer that does not
// answer is still named.
func TestListReadsOnlyThePeersItNeeds(t *testing.T) {
	ctx := context.Background()
	asked := askedPeers{}
	down := map[string]*atomic.Bool{}
	var ps []brokertest.Peer
	for _, name := range []string{"p1", "p2", "p3", "p4", "p5"} {
		asked[name], down[name] = &atomic.Int64{}, &atomic.Bool{}
		ps = append(ps, brokertest.Peer{Name: name, Wrap: func(c *localcloud.Cloud) peers.Cloud {
			return countedNetworks{Cloud: c, calls: asked[name], down: down[name]}
		}})
	}
	e := brokertest.New(t, ps, nil)
	store := replicaStore(t)
	a, b := newReplica(t, e, store), newReplica(t, e, store)
	// Each replica's discovery has read every peer once, as at start.
	a.Discover(ctx)
	b.Discover(ctx)

	net, err := a.CreateNetwork(ctx, "alpha", network.NetworkCreate{Name: "a-net", ZoneHints: []string{"p1"}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := a.CreateSubnet(ctx, "alpha", network.SubnetCreate{NetworkID: net.Ref.ID, CIDR: "10.1.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	port, err := a.CreatePort(ctx, "alpha", network.PortCreate{NetworkID: net.Ref.ID})
	if err != nil {
		t.Fatal(err)
	}
	caughtUp(t, store, "index/port/"+port.Ref.ID, b.index.WaitIndex)

	for _, tc := range []struct {
		name      string
		r         replica
		withPorts bool
	}{
		{"the creating replica", a, false},
		{"the creating replica with ports", a, true},
		{"the other replica", b, false},
		{"the other replica with ports", b, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked.reset()
			v, err := tc.r.List(ctx, "alpha", tc.withPorts)
			if err != nil {
				t.Fatal(err)
			}
			if got := networkIDs(v); !slices.Equal(got, []string{net.Ref.ID}) || len(v.Subnets) != 1 || v.Subnets[0].Ref.ID != sub.Ref.ID {
				t.Fatalf("alpha sees networks %v, subnets %+v", got, v.Subnets)
			}
			if tc.withPorts && (len(v.Ports) != 1 || v.Ports[0].Ref.ID != port.Ref.ID) {
				t.Fatalf("alpha sees ports %+v", v.Ports)
			}
			if got := asked.asked(); !slices.Equal(got, []string{"p1"}) || len(v.Failed) > 0 {
				t.Fatalf("asked %v (failed %v), want p1 only", got, v.Failed)
			}
		})
	}

	// An admin of "ops" shares a network on p3 through replica a.
	shared, err := a.CreateNetwork(ctx, "ops", network.NetworkCreate{Name: "ops-shared", Shared: true, ZoneHints: []string{"p3"}})
	if err != nil {
		t.Fatal(err)
	}
	caughtUp(t, store, "index/network/"+shared.Ref.ID, b.index.WaitIndex)
	fresh := newReplica(t, e, store) // never discovered anything
	for _, tc := range []struct {
		name    string
		r       replica
		project string
		want    []string // networks seen
		asked   []string
	}{
		{"another project on the other replica", b, "beta", []string{shared.Ref.ID}, []string{"p3"}},
		{"the owner of p1's network on the other replica", b, "alpha", sortedIDs(net.Ref.ID, shared.Ref.ID), []string{"p1", "p3"}},
		{"a replica that never read the peers", fresh, "beta", []string{shared.Ref.ID}, []string{"p1", "p2", "p3", "p4", "p5"}},
		{"that replica once it has", fresh, "beta", []string{shared.Ref.ID}, []string{"p3"}},
		{"an admin's list of every project", b, "", sortedIDs(net.Ref.ID, shared.Ref.ID), []string{"p1", "p2", "p3", "p4", "p5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked.reset()
			v, err := tc.r.List(ctx, tc.project, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := networkIDs(v); !slices.Equal(got, tc.want) {
				t.Fatalf("%q sees %v, want %v", tc.project, got, tc.want)
			}
			if got := asked.asked(); !slices.Equal(got, tc.asked) || len(v.Failed) > 0 {
				t.Fatalf("asked %v (failed %v), want %v", got, v.Failed, tc.asked)
			}
		})
	}

	t.Run("a peer of the project that does not answer", func(t *testing.T) {
		down["p1"].Store(true)
		defer down["p1"].Store(false)
		asked.reset()
		v, err := b.List(ctx, "alpha", false)
		if err != nil {
			t.Fatal(err)
		}
		if got := networkIDs(v); !slices.Equal(got, []string{shared.Ref.ID}) || !slices.Equal(v.Failed, []string{"p1"}) {
			t.Fatalf("alpha sees %v, failed %v; want the shared network and p1 named", got, v.Failed)
		}
		if got := asked.asked(); !slices.Equal(got, []string{"p1", "p3"}) {
			t.Fatalf("asked %v, want p1 and p3", got)
		}
	})
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
