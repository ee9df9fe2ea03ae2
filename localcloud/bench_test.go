package localcloud_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
)

// BenchmarkCreate100Servers measures create->ACTIVE throughput over the
// fake driver: 100 servers asked for at once, each with a NIC, until all
// are ACTIVE (then deleted, untimed). localcloud/libvirt has the same
// benchmark on test:///default.
func BenchmarkCreate100Servers(b *testing.B) {
	cfg := localcloud.DevDefaults(b.TempDir())
	cfg.Hosts = []localcloud.HostConfig{{Name: "host-a", URI: "fake://a", VCPUs: 64, RAMMiB: 256 << 10, DiskGiB: 10000}}
	c, err := localcloud.New(cfg, fake.New(cfg.Hosts...), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	seeded, err := c.Seed(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	const n = 100
	var total time.Duration
	ctx := context.Background()
	for b.Loop() {
		start := time.Now()
		ids := make([]string, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				srv, err := c.CreateServer(ctx, peers.ServerSpec{Name: fmt.Sprintf("bench-%d", i), Project: "bench", FlavorID: "42",
					ImageID: seeded.ImageID, Networks: []peers.NetworkAttachment{{NetworkID: seeded.NetworkID}}})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = srv.ID
				for {
					s, err := c.GetServer(ctx, srv.ID)
					if err != nil || s.Status == peers.ServerError {
						errs <- fmt.Errorf("server %s: %v %s", srv.ID, err, s.Fault)
						return
					}
					if s.Status == peers.ServerActive {
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		wg.Wait()
		total += time.Since(start)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.StopTimer()
		for _, id := range ids {
			if err := c.DeleteServer(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		for _, id := range ids {
			for _, err := c.GetServer(ctx, id); !errors.Is(err, peers.ErrNotFound); _, err = c.GetServer(ctx, id) {
				time.Sleep(time.Millisecond)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "servers/s")
}
