package deploy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// hookCloud lets a test act around a peer's calls: fail creates, add
// latency, or stop an engine right after a peer made a resource.
type hookCloud struct {
	peers.Cloud
	mu sync.Mutex
	// before runs ahead of every create, after after a successful one;
	// either may be nil. kind is the peers call's object ("server"...).
	before func(ctx context.Context, kind string) error
	after  func(kind string)
}

func (h *hookCloud) hooks() (func(context.Context, string) error, func(string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.before, h.after
}

func (h *hookCloud) set(before func(ctx context.Context, kind string) error, after func(kind string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.before, h.after = before, after
}

func hookCreate[T any](ctx context.Context, h *hookCloud, kind string, fn func() (T, error)) (T, error) {
	before, after := h.hooks()
	if before != nil {
		if err := before(ctx, kind); err != nil {
			var zero T
			return zero, err
		}
	}
	v, err := fn()
	if err == nil && after != nil {
		after(kind)
	}
	return v, err
}

func (h *hookCloud) CreateServer(ctx context.Context, s peers.ServerSpec) (peers.Server, error) {
	return hookCreate(ctx, h, "server", func() (peers.Server, error) { return h.Cloud.CreateServer(ctx, s) })
}

func (h *hookCloud) CreateVolume(ctx context.Context, s peers.VolumeSpec) (peers.Volume, error) {
	return hookCreate(ctx, h, "volume", func() (peers.Volume, error) { return h.Cloud.CreateVolume(ctx, s) })
}

func (h *hookCloud) CreateNetwork(ctx context.Context, s peers.NetworkSpec) (peers.Network, error) {
	return hookCreate(ctx, h, "network", func() (peers.Network, error) { return h.Cloud.CreateNetwork(ctx, s) })
}

func (h *hookCloud) CreateSubnet(ctx context.Context, s peers.SubnetSpec) (peers.Subnet, error) {
	return hookCreate(ctx, h, "subnet", func() (peers.Subnet, error) { return h.Cloud.CreateSubnet(ctx, s) })
}

func (h *hookCloud) CreatePort(ctx context.Context, s peers.PortSpec) (peers.Port, error) {
	return hookCreate(ctx, h, "port", func() (peers.Port, error) { return h.Cloud.CreatePort(ctx, s) })
}

type testEnv struct {
	*brokertest.Env
	hooks map[string]*hookCloud // by peer name
}

// newEnv builds two seeded fake-driver local clouds, "local" and
// "remote", pooled over a memory store.
func newEnv(t *testing.T) *testEnv {
	hooks := map[string]*hookCloud{}
	var ps []brokertest.Peer
	for _, name := range []string{"local", "remote"} {
		ps = append(ps, brokertest.Peer{Name: name, Wrap: func(c *localcloud.Cloud) peers.Cloud {
			if _, err := c.Seed(context.Background()); err != nil {
				t.Fatal(err)
			}
			h := &hookCloud{Cloud: c}
			hooks[name] = h
			return h
		}})
	}
	env := brokertest.New(t, ps, nil)
	return &testEnv{Env: env, hooks: hooks}
}

func (te *testEnv) engine(holder string) *Engine {
	return &Engine{Store: te.Store, Peers: te.Pool, Placer: policy.Default{}, Holder: holder, BrokerID: "test-broker",
		PollInterval: 20 * time.Millisecond, SettleTimeout: time.Minute}
}

// tagged counts, per peer, the resources carrying the deployment's tag.
func (te *testEnv) tagged(t testing.TB, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range te.Pool.Members() {
		for _, kind := range sweepOrder {
			ids, err := tagged(te.Ctx, m.Cloud, kind, map[string]string{MetaDeployment: id})
			if err != nil {
				t.Fatal(err)
			}
			out[m.Peer.Name] += len(ids)
		}
	}
	return out
}

// projectResources counts what the project owns on each peer, tagged or not.
func (te *testEnv) projectResources(t testing.TB, project string) map[string]int {
	t.Helper()
	out := map[string]int{}
	opts := peers.ListOptions{Project: project}
	for _, m := range te.Pool.Members() {
		c := m.Cloud
		s, err1 := c.ListServers(te.Ctx, opts)
		v, err2 := c.ListVolumes(te.Ctx, opts)
		n, err3 := c.ListNetworks(te.Ctx, opts)
		sn, err4 := c.ListSubnets(te.Ctx, opts)
		p, err5 := c.ListPorts(te.Ctx, opts)
		k, err6 := c.ListKeypairs(te.Ctx, opts)
		for _, err := range []error{err1, err2, err3, err4, err5, err6} {
			if err != nil {
				t.Fatal(err)
			}
		}
		out[m.Peer.Name] = len(s) + len(v) + len(n) + len(sn) + len(p) + len(k)
	}
	return out
}

func (h *hookCloud) AttachVolume(ctx context.Context, serverID, volumeID string) (peers.VolumeAttachment, error) {
	return hookCreate(ctx, h, "attachment", func() (peers.VolumeAttachment, error) {
		return h.Cloud.AttachVolume(ctx, serverID, volumeID)
	})
}

// recIndex is an Indexer keeping what is indexed now.
type recIndex struct {
	mu sync.Mutex
	m  map[string]IndexedResource
}

func (x *recIndex) Indexed(_ context.Context, r IndexedResource) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string]IndexedResource{}
	}
	x.m[r.BrokerID] = r
	return nil
}

func (x *recIndex) Unindexed(_ context.Context, r IndexedResource) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.m, r.BrokerID)
	return nil
}

func (x *recIndex) count(kind string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, r := range x.m {
		if r.Kind == kind {
			n++
		}
	}
	return n
}

func (h *hookCloud) CreateKeypair(ctx context.Context, s peers.KeypairSpec) (peers.Keypair, error) {
	return hookCreate(ctx, h, "keypair", func() (peers.Keypair, error) { return h.Cloud.CreateKeypair(ctx, s) })
}
