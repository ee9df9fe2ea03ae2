package compute_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// scaleFigures are one environment's measurements.
type scaleFigures struct {
	createsPerSec float64
	// brokerPerCreate is a create's time less its peer's CreateServer
	// call: what the broker spends (placement, references, index, usage).
	brokerPerCreate time.Duration
	detailP50       time.Duration
}

// timedCloud times a local cloud's CreateServer calls: the peer's own
// part of a create (the fake driver persists the peer's whole state on
// every change, which grows with the servers it holds).
type timedCloud struct {
	*localcloud.Cloud
	spent *atomic.Int64 // nanoseconds
}

// GetImage is timed too: a create reads its image from the peer, whose
// lock the peer's state writes hold.
func (c timedCloud) GetImage(ctx context.Context, id string) (peers.Image, error) {
	start := time.Now()
	defer func() { c.spent.Add(int64(time.Since(start))) }()
	return c.Cloud.GetImage(ctx, id)
}

func (c timedCloud) CreateServer(ctx context.Context, spec peers.ServerSpec) (peers.Server, error) {
	start := time.Now()
	defer func() { c.spent.Add(int64(time.Since(start))) }()
	return c.Cloud.CreateServer(ctx, spec)
}

// Sizes of BenchmarkServersAtScale.
const (
	scalePeers   = 10
	scaleOthers  = 10000 // other projects' servers in the loaded cloud
	scaleCreates = 40    // the measured project's creates
	scaleLists   = 200   // its detailed lists
)

// BenchmarkServersAtScale: a project's server create rate (POST /servers,
// one after another, over real HTTP) and its GET /servers/detail p50, on
// ten fake-driver peers, in an empty cloud and in one holding 10,000
// other projects' servers (1,000 per peer, booted); the slowdowns say
// what the others cost the project (1 is nothing).
//
// The broker serves the index, attrs, keypairs and flavors from memory, so
// a create's planning and placement take the same time either way. The
// create's remaining slowdown is the peer's: the fake driver's local cloud
// writes its whole state (every server it holds) to disk, fsynced, on
// every change, so a create on a peer holding 1,000 servers waits for
// ~1 MB to be encoded and synced, and its background writes take the CPU
// from everything else. broker-ms/create is a create's time less its peer
// calls (CreateServer, GetImage), which that contention still inflates.
func BenchmarkServersAtScale(b *testing.B) {
	empty := measureAtScale(b, 0)
	loaded := measureAtScale(b, scaleOthers)
	b.ReportMetric(empty.createsPerSec, "creates/s-empty")
	b.ReportMetric(loaded.createsPerSec, "creates/s-10k")
	b.ReportMetric(empty.createsPerSec/loaded.createsPerSec, "create-slowdown")
	b.ReportMetric(ms(empty.brokerPerCreate), "broker-ms/create-empty")
	b.ReportMetric(ms(loaded.brokerPerCreate), "broker-ms/create-10k")
	b.ReportMetric(float64(loaded.brokerPerCreate)/float64(empty.brokerPerCreate), "broker-create-slowdown")
	b.ReportMetric(ms(empty.detailP50), "detail-p50-ms-empty")
	b.ReportMetric(ms(loaded.detailP50), "detail-p50-ms-10k")
	b.ReportMetric(float64(loaded.detailP50)/float64(empty.detailP50), "detail-slowdown")
}

func measureAtScale(b *testing.B, others int) scaleFigures {
	var ps []brokertest.Peer
	var peerTime atomic.Int64
	for i := range scalePeers {
		ps = append(ps, brokertest.Peer{Name: fmt.Sprintf("peer-%02d", i), VCPUs: 1 << 16, RAMMiB: 1 << 24, DiskGiB: 1 << 20,
			Wrap: func(c *localcloud.Cloud) peers.Cloud { return timedCloud{Cloud: c, spent: &peerTime} }})
	}
	se := newServersEnv(b, ps...)
	populate(b, se, others)
	// The measured project may hold every server it creates here; quotas
	// are still checked (and reserved, and committed) on each create.
	if _, err := se.Servers.QuotaAdmin.Set(se.Ctx, se.Boot.Project.ID, quota.Amounts{quota.Instances: quota.Unlimited, quota.Cores: quota.Unlimited, quota.RAM: quota.Unlimited}); err != nil {
		b.Fatal(err)
	}
	c := se.admin(b)
	image := se.Seeded["peer-00"].ImageID
	b.ResetTimer()
	peerTime.Store(0)
	start := time.Now()
	for i := range scaleCreates {
		create(b, c, servers.CreateOpts{Name: fmt.Sprintf("bench-%02d", i), FlavorRef: "42", ImageRef: image, Networks: "none"})
	}
	elapsed := time.Since(start)
	brokerTime := elapsed - time.Duration(peerTime.Load())
	url := c.ServiceURL("servers", "detail")
	get(b, url, c.TokenID)
	lat := make([]time.Duration, 0, scaleLists)
	for range scaleLists {
		lat = append(lat, get(b, url, c.TokenID))
	}
	b.StopTimer()
	return scaleFigures{createsPerSec: float64(scaleCreates) / elapsed.Seconds(), brokerPerCreate: brokerTime / scaleCreates,
		detailP50: quantile(lat, 0.5)}
}

// populate puts n servers of 1,000 other projects on the peers, as the
// broker would have created them: marked on their peer, indexed.
func populate(b *testing.B, se *serversEnv, n int) {
	ctx := context.Background()
	members := se.Pool.Members()
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 16 * len(members) {
		wg.Go(func() {
			for i := range work {
				m := members[i%len(members)]
				id, project := fmt.Sprintf("other-%05d", i), fmt.Sprintf("project-%03d", i%1000)
				srv, err := m.Cloud.CreateServer(ctx, peers.ServerSpec{Name: id, Project: project, FlavorID: "42",
					ImageID:  se.Seeded[m.Peer.Name].ImageID,
					Metadata: map[string]string{peers.MetaID: id, peers.MetaProject: project, peers.MetaBrokerID: testBroker}})
				if err == nil {
					err = se.Index.Put(ctx, index.Entry{Kind: compute.KindServer, ID: id, Project: project, PeerID: m.Peer.ID,
						PeerResourceID: srv.ID, Name: id, CreatedAt: srv.CreatedAt})
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	settle(b, se)
}

// settle waits until no peer has a server still booting: the loaded cloud
// is measured at rest, not while its peers finish the population's boots.
func settle(b *testing.B, se *serversEnv) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for _, m := range se.Pool.Members() {
		for {
			srvs, err := m.Cloud.ListServers(se.Ctx, peers.ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if !slices.ContainsFunc(srvs, func(s peers.Server) bool { return s.Status == peers.ServerBuild }) {
				break
			}
			select {
			case <-tick.C:
			case <-se.Ctx.Done():
				b.Fatal("the population never finished booting")
			}
		}
	}
}
