package compute_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

const testBroker = "test-broker"

// serversEnv is Keystone, Nova (with servers), Cinder, Glance and Neutron
// over seeded local-cloud peers.
type serversEnv struct {
	*brokertest.Env
	Index    *index.Index
	Servers  *compute.Servers
	Networks *network.Service
	Ledger   *quota.Ledger
	Seeded   map[string]localcloud.Seeded // by peer name, the peers' own IDs
	// Nets are the seeded networks' broker IDs (what the APIs take), by
	// peer name.
	Nets map[string]string
}

// services are the broker's, with Glance and Neutron, which the CLI needs.
var services = append(slices.Clone(identity.DefaultServices),
	identity.ServiceEntry{Type: "image", Name: "glance", Path: "/image"},
	identity.ServiceEntry{Type: "network", Name: "neutron", Path: "/network"})

// seeder is a local cloud, or a wrapper embedding one.
type seeder interface {
	Seed(ctx context.Context) (localcloud.Seeded, error)
}

func newServersEnv(t testing.TB, ps ...brokertest.Peer) *serversEnv {
	t.Helper()
	if len(ps) == 0 {
		ps = []brokertest.Peer{{Name: "local-a"}, {Name: "local-b"}}
	}
	se := &serversEnv{Seeded: map[string]localcloud.Seeded{}, Nets: map[string]string{}}
	se.Env = brokertest.New(t, ps, func(e *brokertest.Env, r chi.Router) {
		se.Index = e.Index
		images := &image.Service{Pool: e.Pool, Index: se.Index, Placer: policy.Default{}, Store: e.Store, Log: e.Log, BrokerID: testBroker}
		se.Networks = &network.Service{Pool: e.Pool, Index: se.Index, Store: e.Store, Placer: policy.Default{}, Log: e.Log, BrokerID: testBroker}
		kps := compute.NewKeypairStore(e.Store)
		se.Ledger = quota.NewLedger(e.Store, "test-broker-1", e.Log)
		kps.Quota = se.Ledger
		attrs, groups := compute.NewServerAttrs(e.Store, e.Log), compute.NewServerGroups(e.Store, e.Log)
		deactivations, netAttrs := image.NewDeactivations(e.Store, e.Log), network.NewAttrsMemory(e.Store, e.Log)
		e.Start(t, kps, attrs, groups, deactivations, netAttrs)
		images.Deactivations, se.Networks.AttrsMemory = deactivations, netAttrs
		vols := &volume.Service{Pool: e.Pool, Index: se.Index, Placer: policy.Default{}, Images: images, Store: e.Store, Log: e.Log, BrokerID: testBroker,
			PeerTimeout: 2 * time.Second, Quota: se.Ledger}
		se.Servers = &compute.Servers{Pool: e.Pool, Index: se.Index, Placer: policy.Default{}, Images: images, Networks: se.Networks, Volumes: vols,
			Stager: staging.New(e.Store, "test-broker-1", e.Log), Keypairs: kps, Store: e.Store, Attrs: attrs, GroupMemory: groups, Log: e.Log, BrokerID: testBroker, PeerTimeout: 2 * time.Second,
			Quota: se.Ledger, QuotaAdmin: se.Ledger.Limits.(*quota.Limits)}
		nova := &compute.Nova{Pool: e.Pool, Keypairs: kps, Servers: se.Servers, Auth: e.Keystone.Authenticate, Log: e.Log, PeerTimeout: 2 * time.Second}
		r.Route("/compute", nova.Routes)
		cinder := &volume.Cinder{Volumes: vols, QuotaAdmin: se.Ledger.Limits.(*quota.Limits), Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/volume", cinder.Routes)
		glance := &image.Glance{Images: images, Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/image", glance.Routes)
		neutron := &network.Neutron{Service: se.Networks, Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/network", neutron.Routes)
		e.Keystone.Catalog = identity.StaticCatalog(services)
	})
	for _, m := range se.Pool.Members() {
		s, err := m.Cloud.(seeder).Seed(se.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		se.Seeded[m.Peer.Name] = s
		se.Nets[m.Peer.Name] = network.NativeID(m.Peer.ID, network.KindNetwork, s.NetworkID)
	}
	return se
}

func (se *serversEnv) compute(t testing.TB, user, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewComputeV2(se.Provider(t, user, password, project), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (se *serversEnv) admin(t testing.TB) *gophercloud.ServiceClient {
	return se.compute(t, "admin", brokertest.AdminPassword, "admin")
}

// waitStatus polls a server until it has status want, as clients do.
func waitStatus(t testing.TB, c *gophercloud.ServiceClient, id, want string) *servers.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := servers.Get(ctx, c, id).Extract()
		if err == nil && s.Status == want {
			return s
		}
		if err == nil && s.Status == "ERROR" && want != "ERROR" {
			t.Fatalf("server %s went to ERROR: %+v", id, s.Fault)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("server %s never reached %s (last: %+v, %v)", id, want, s, err)
		}
	}
}

func create(t testing.TB, c *gophercloud.ServiceClient, opts servers.CreateOptsBuilder) *servers.Server {
	t.Helper()
	s, err := servers.Create(context.Background(), c, opts, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func is404(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

func listAll(t *testing.T, c *gophercloud.ServiceClient, opts servers.ListOpts) []servers.Server {
	t.Helper()
	pages, err := servers.List(c, opts).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ss, err := servers.ExtractServers(pages)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func names(ss []servers.Server) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

// post sends a raw JSON body and returns the status and the fault message.
func post(t *testing.T, c *gophercloud.ServiceClient, path string, body any) (int, string) {
	t.Helper()
	var fault map[string]struct {
		Message string `json:"message"`
	}
	resp, err := c.Post(context.Background(), c.ServiceURL(path), body, &fault, &gophercloud.RequestOpts{OkCodes: []int{200, 202, 400, 403, 404, 409}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fault {
		return resp.StatusCode, f.Message
	}
	return resp.StatusCode, ""
}

// waitVolumeGone polls a volume until the volume API no longer has it.
func waitVolumeGone(t *testing.T, bs *gophercloud.ServiceClient, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := volumes.Get(ctx, bs, id).Extract()
		if is404(err) {
			return
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("volume %s never went: %v", id, err)
		}
	}
}

func waitVolume(t *testing.T, bs *gophercloud.ServiceClient, id, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := volumes.Get(ctx, bs, id).Extract()
		if err == nil && v.Status == want {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("volume %s never reached %s (last %+v, %v)", id, want, v, err)
		}
	}
}

// bootableVolume makes a bootable volume of the admin project on m from
// its seeded image and indexes it as the volume API would (Cinder's API
// makes no volumes from images yet), and waits until it is available.
func (se *serversEnv) bootableVolume(t *testing.T, m *peers.Member) string {
	t.Helper()
	ctx, project := se.Ctx, se.Boot.Project.ID
	id := uuid.NewString()
	pv, err := m.Cloud.CreateVolume(ctx, peers.VolumeSpec{Name: "root", Project: project, SizeGiB: 1, ImageID: se.Seeded[m.Peer.Name].ImageID,
		Metadata: map[string]string{peers.MetaID: id, peers.MetaProject: project, peers.MetaBrokerID: testBroker}})
	if err != nil {
		t.Fatal(err)
	}
	if err := se.Index.Put(ctx, index.Entry{Kind: "volume", ID: id, Project: project, PeerID: m.Peer.ID, PeerResourceID: pv.ID, Name: pv.Name}); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for v := pv; v.Status != peers.VolumeAvailable; {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the volume never became available")
		}
		if v, err = m.Cloud.GetVolume(ctx, pv.ID); err != nil {
			t.Fatal(err)
		}
	}
	return id
}
