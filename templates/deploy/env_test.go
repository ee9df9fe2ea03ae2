package deploy

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/deploytest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
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
	svc   *deploytest.Services
}

// newEnv builds two seeded fake-driver local clouds, "local" and
// "remote", pooled over a memory store, and the broker's services over
// them.
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
	svc := deploytest.New(env.Store, env.Pool, policy.Default{}, "test-broker", env.Log)
	svc.Unlimited()
	return &testEnv{Env: env, hooks: hooks, svc: svc}
}

func (te *testEnv) engine(holder string) *Engine {
	return &Engine{Store: te.Store, Resources: te.svc.Adapter, Peers: te.svc.Adapter, Placer: policy.Default{}, Holder: holder,
		PollInterval: 20 * time.Millisecond, SettleTimeout: time.Minute}
}

// owner is a deployment's creator in project p.
func owner(p string) resource.Caller { return resource.Caller{Project: p, User: "user-of-" + p} }

// onPeer lists the IDs of the peer's resources of kind carrying every
// tag (a test may look at the peers directly; the engine may not).
func onPeer(ctx context.Context, c peers.Cloud, kind templates.Kind, tags map[string]string) ([]string, error) {
	opts := peers.ListOptions{Metadata: tags}
	var ids []string
	var err error
	switch kind {
	case templates.KindServer:
		var l []peers.Server
		l, err = c.ListServers(ctx, opts)
		for _, x := range l {
			if x.Status != peers.ServerDeleted {
				ids = append(ids, x.ID)
			}
		}
	case templates.KindVolume:
		var l []peers.Volume
		l, err = c.ListVolumes(ctx, opts)
		for _, x := range l {
			ids = append(ids, x.ID)
		}
	case templates.KindNetwork:
		var l []peers.Network
		l, err = c.ListNetworks(ctx, opts)
		for _, x := range l {
			ids = append(ids, x.ID)
		}
	case templates.KindSubnet:
		var l []peers.Subnet
		l, err = c.ListSubnets(ctx, opts)
		for _, x := range l {
			ids = append(ids, x.ID)
		}
	case templates.KindPort:
		var l []peers.Port
		l, err = c.ListPorts(ctx, opts)
		for _, x := range l {
			ids = append(ids, x.ID)
		}
	case templates.KindImage:
		var l []peers.Image
		l, err = c.ListImages(ctx, opts)
		for _, x := range l {
			ids = append(ids, x.ID)
		}
	}
	return ids, err
}

// tagged counts, per peer, the resources carrying the deployment's tag.
func (te *testEnv) tagged(t testing.TB, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range te.Pool.Members() {
		for _, kind := range sweepOrder {
			ids, err := onPeer(te.Ctx, m.Cloud, kind, map[string]string{MetaDeployment: id})
			if err != nil {
				t.Fatal(err)
			}
			out[m.Peer.Name] += len(ids)
		}
	}
	return out
}

// projectResources counts what the project owns on each peer, tagged or
// not (keypairs are the broker's, per user, not the peers').
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
		for _, err := range []error{err1, err2, err3, err4, err5} {
			if err != nil {
				t.Fatal(err)
			}
		}
		out[m.Peer.Name] = len(s) + len(v) + len(n) + len(sn) + len(p)
	}
	return out
}

// indexed counts the project's resources of kind in the broker's index.
func (te *testEnv) indexed(t testing.TB, kind, project string) int {
	t.Helper()
	es, err := te.svc.Index.List(te.Ctx, kind, project)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func (h *hookCloud) AttachVolume(ctx context.Context, serverID, volumeID string) (peers.VolumeAttachment, error) {
	return hookCreate(ctx, h, "attachment", func() (peers.VolumeAttachment, error) {
		return h.Cloud.AttachVolume(ctx, serverID, volumeID)
	})
}

func (h *hookCloud) CreateKeypair(ctx context.Context, s peers.KeypairSpec) (peers.Keypair, error) {
	return hookCreate(ctx, h, "keypair", func() (peers.Keypair, error) { return h.Cloud.CreateKeypair(ctx, s) })
}

// peerID is the peer's own ID of a resource the index knows by brokerID.
func (te *testEnv) peerID(t testing.TB, kind, brokerID string) string {
	t.Helper()
	e, err := te.svc.Index.Get(te.Ctx, kind, brokerID, "")
	if err != nil {
		t.Fatalf("%s %s: %v", kind, brokerID, err)
	}
	return e.PeerResourceID
}

// UploadImage and DownloadImage pass image data through, so the image
// service takes a hooked local cloud for a peer that stores images.
func (h *hookCloud) UploadImage(ctx context.Context, id string, data io.Reader, size int64) error {
	return h.Cloud.(peers.ImageData).UploadImage(ctx, id, data, size)
}

func (h *hookCloud) DownloadImage(ctx context.Context, id string) (io.ReadCloser, error) {
	return h.Cloud.(peers.ImageData).DownloadImage(ctx, id)
}
