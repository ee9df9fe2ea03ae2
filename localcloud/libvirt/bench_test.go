package libvirt_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/libvirt"
	"github.com/cloudmux/cloudmux/peers"
)

// BenchmarkCreate100Servers measures create->ACTIVE throughput of the local
// cloud on test:///default: 100 servers asked for at once, each with a NIC
// and a config drive, until all are ACTIVE (then deleted, untimed).
func BenchmarkCreate100Servers(b *testing.B) {
	requireLibvirtB(b)
	prefix := "cmxbench-" + randHex(4) + "-"
	d, err := libvirt.New(libvirt.Config{
		Hosts: []localcloud.HostConfig{{Name: "h1", URI: "test:///default", VCPUs: 64, RAMMiB: 256 << 10, DiskGiB: 10000}},
		Pool:  prefix + "pool", PoolPath: b.TempDir() + "/pool", Prefix: prefix,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		sweep(b, "test:///default", prefix)
		_ = d.Close()
	}()
	lc := localcloud.DevDefaults(b.TempDir())
	lc.Hosts = []localcloud.HostConfig{{Name: "h1", URI: "test:///default", VCPUs: 64, RAMMiB: 256 << 10, DiskGiB: 10000}}
	c, err := localcloud.New(lc, d, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	seeded, err := c.Seed(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = c.DeleteSubnet(context.Background(), seeded.SubnetID)
		_ = c.DeleteNetwork(context.Background(), seeded.NetworkID)
	}()
	const n = 100
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		ids := createActive(b, c, seeded, n)
		total += time.Since(start)
		b.StopTimer()
		deleteAll(b, c, ids)
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "servers/s")
}

func requireLibvirtB(b *testing.B) {
	b.Helper()
	if !libvirtHere() {
		b.Skipf("no libvirtd (%s is absent); set CLOUDMUX_REQUIRE_LIBVIRT=1 to fail instead", libvirtSocket)
	}
}

// createActive creates n servers at once and waits until all are ACTIVE.
func createActive(b *testing.B, c *localcloud.Cloud, seeded localcloud.Seeded, n int) []string {
	ctx := context.Background()
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
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return ids
}

func deleteAll(b *testing.B, c *localcloud.Cloud, ids []string) {
	ctx := context.Background()
	for _, id := range ids {
		if err := c.DeleteServer(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	for _, id := range ids {
		for {
			_, err := c.GetServer(ctx, id)
			if errors.Is(err, peers.ErrNotFound) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}
